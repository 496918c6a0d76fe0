-- Log lines that the host cuts at its line cap, with a token right at the cut.
return {
  execution = function()
    local t = os.getenv("CLIQHOST_SANDBOX_LEAK")
    for k = 3850, 4010, 3 do
      log.info(string.rep("x", k) .. t)
    end
    warn(string.rep("y", 5000))
    return "logged"
  end,
}
