# shellcheck shell=bash
# bench/lib.sh: helpers the load tests share (sourced by bench/run.sh and
# bench/store.sh).

# wait_port LOG: prints the port from the first "listening on [HOST:]PORT" in
# LOG, waiting up to 10 s for it.
wait_port() {
  local port=""
  for _ in $(seq 200); do
    port=$(grep -o 'listening on [^ ]*' "$1" | head -1 | sed 's/.*[: ]//') && [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "server did not start; its log:" >&2; cat "$1" >&2; return 1; }
  echo "$port"
}

# median NUMBER...: the middle one (the upper of the two middle ones).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# cpu_ticks PID: the CPU time PID has used so far (user + system), in clock
# ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
