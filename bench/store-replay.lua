-- wrk script for bench/store.sh: sends the signed calls written by
-- cliqhost-bench-sign in the file's order, each once, so that the host's
-- replay checks see a new call every time (bench/replay.lua cycles through
-- its calls from a random start, which only a host without repeat checks
-- accepts). Past the last call it starts again: those repeats are refused
-- (401), and store.sh fails the run when wrk counts any non-2xx answer.
--   wrk -t1 -s bench/store-replay.lua URL -- REQUESTS_FILE

local requests = {}
local next_index = 0

function init(args)
  for line in io.lines(args[1]) do
    local sig, body = line:match("^([^\t]+)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", "/", {
      ["Content-Type"] = "application/json",
      ["X-Cliq-Signature"] = sig,
    }, body)
  end
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
