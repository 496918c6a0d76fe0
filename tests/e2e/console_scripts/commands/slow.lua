-- For test_console_api: answers after the deadline (its argument: seconds
-- to sleep first), so the interim reply goes out and the result is late.
return {
  execution = function(req)
    sleep(tonumber(req.params.arguments) or 1)
    return { text = "slow done" }
  end,
}
