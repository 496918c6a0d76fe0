-- Shadows the shipped cliq.args: scripts/lib/ is searched first.
return { shadow = true }
