# shellcheck shell=bash
# bench/lib.sh: helpers the load tests share (sourced by bench/run.sh,
# bench/store.sh and bench/journal.sh).

# wait_port LOG: prints the port from the first "listening on [HOST:]PORT" in
# LOG, waiting up to 10 s for it.
wait_port() {
  local port=""
  for _ in $(seq 200); do
    port=$(grep -so 'listening on [^ ]*' "$1" | head -1 | sed 's/.*[: ]//') && [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "server did not start; its log:" >&2; cat "$1" >&2; return 1; }
  echo "$port"
}

# median NUMBER...: the middle one (the upper of the two middle ones).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# cpu_ticks PID...: the CPU time the processes have used so far (user +
# system, summed), in clock ticks.
cpu_ticks() { awk '{t += $14 + $15} END {print t + 0}' $(printf '/proc/%s/stat ' "$@"); }

# stop_all PID...: stops each process still up (the empty PIDs are skipped)
# and waits for it; for a script's cleanup, so never fails.
stop_all() {
  local p
  for p; do
    if [ -n "$p" ]; then
      kill "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    fi
  done
}

# start_redis DIR: starts a redis-server of this run's own on a free loopback
# port (persistence off; its files and log in DIR) and waits up to 10 s for
# it to answer; sets REDIS_PID, REDIS_PORT, REDIS_URL and REDIS_VERSION.
# Returns 1, with its log on stderr, when it does not answer.
start_redis() {
  REDIS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$1"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$1" \
    --daemonize no --loglevel warning >"$1/redis.log" 2>&1 &
  REDIS_PID=$!
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  REDIS_VERSION=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
  for _ in $(seq 200); do
    [ "$(redis-cli -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
  echo "redis-server did not start:" >&2
  cat "$1/redis.log" >&2
  return 1
}

# metric PORT NAME: the value of one /metrics line (NAME with its labels) of
# the host on 127.0.0.1:PORT, 0 when absent.
metric() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {v = $2} END {print v + 0}'
}

# result_head: the first members of a results file's JSON object (date,
# machine, host, commit), each line ending with a comma; BUILD names the
# host's build tree.
result_head() {
  cat <<JSON
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "machine": {"cpu": "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)", "cores": $(nproc), "kernel": "$(uname -r)"},
  "host": "$("$BUILD/cliqhost" --version)",
  "commit": "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- host bench || echo "+changes")",
JSON
}

# json_strings TEXT...: the non-empty TEXTs as the members of a JSON array
# (quotes escaped), for the reasons a run is not valid.
json_strings() {
  printf '%s\n' "$@" | awk 'NF {gsub(/"/, "\\\""); printf "%s\"%s\"", n++ ? "," : "", $0}'
}

# machine_ticks: busy ticks of all cores (user, nice, system, irq, softirq).
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# calc EXPR: floating-point arithmetic, 3 decimals.
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
