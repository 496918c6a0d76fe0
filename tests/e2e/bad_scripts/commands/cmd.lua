-- The call assertServing() makes after each bad input.
return {
  execution = function()
    return "ok"
  end,
}
