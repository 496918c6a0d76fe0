-- The outbox benchmark's baseline handler (bench/outbox.sh): the same call
-- as probe.lua without the post, so probe round trips minus these are the
-- time the post added.
return {
  execution = function(req)
    return { text = "accepted 0" }
  end,
}
