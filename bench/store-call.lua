-- wrk script for bench/store.sh: one unsigned command call to the "ops"
-- handler (bench/scripts-store/commands/ops.lua), over and over; the host
-- runs with --no-verify, so what is measured is the handler and its store
-- operations, not RSA.
--   wrk -s bench/store-call.lua URL -- "incr 50"

local req

function init(args)
  local body = string.format('{"type":"command","name":"ops","timestamp":0,'
    .. '"handler":{"type":"execution_handler"},"params":{"arguments":"%s"}}', args[1])
  req = wrk.format("POST", "/", { ["Content-Type"] = "application/json" }, body)
end

function request()
  return req
end
