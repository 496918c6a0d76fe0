return {
  execution = function(req)
    return { text = "hi", buttons = { { label = "x", action = function() end } } }
  end,
}
