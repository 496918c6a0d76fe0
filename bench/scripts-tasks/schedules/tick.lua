-- bench/tasks.sh copies this into schedules/tick-NNN.lua, once per schedule
-- of a case. The run does nothing: its start and end are the same
-- millisecond, so the host's outcome line (its timestamp, the tick, ms=)
-- says how late after its tick the run started.
---@type cliq.Schedule
return {
  every = "1s",
  run = function(job) end,
}
