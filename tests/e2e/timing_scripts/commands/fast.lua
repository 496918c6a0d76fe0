-- Answers at once: the request the tests send while something else is
-- running, to show the worker is not stuck.
return {
  execution = function(req)
    return { text = "fast", tag = (req.params.options or {}).tag }
  end,
}
