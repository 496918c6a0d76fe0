-- For test_console_api: the test rewrites this file to see a replay run
-- the new version.
return {
  execution = function(req)
    return { text = "hello v1" }
  end,
}
