-- A module whose top level waits: the host refuses that.
sleep(1)
return {}
