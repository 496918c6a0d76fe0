-- Never yields: the CPU limit must stop it.
return {
  execution = function(req)
    while true do end
  end,
}
