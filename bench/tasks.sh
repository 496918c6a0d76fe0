#!/usr/bin/env bash
# bench/tasks.sh [SECONDS]: the benchmark of hooks and schedules (issue 15),
# in one run on this machine: wrk, the hosts (2 workers each, built into
# build/bench/) and a redis-server of its own on a loopback port.
#
# 1. Hooks against Cliq calls. ROUNDS (3) rounds of three cases taking
#    turns, each a fresh host, SECONDS (6) of wrk -t1 -c$CONNS after a 1 s
#    warm-up:
#      cliq      signed Cliq calls to bench/scripts' trivial command (the 10,000
#                of cliqhost-bench-sign replayed by bench/replay.lua, with
#                --replay-memory 0 as bench/run.sh does, and --replay-window
#                900: the calls are stamped when signed, and the last rounds
#                of part 3 come more than the default 300 s later);
#      github    POST /hooks/github, scheme github: one fixed ~1.1 KB JSON
#                body (bench/hook-body.json) with its X-Hub-Signature-256
#                (the scheme has no delivery id, so the same request again is
#                valid); receive() returns {ok = true};
#      standard  POST /hooks/standard, scheme standard-webhooks: the same
#                body as deliveries each with its own webhook-id, signed
#                beforehand (bench/hook-sign.py; MAX_RATE (80,000) per second
#                of the run, stamped at signing, tolerance_s 900) and sent
#                each once (bench/hook.lua), so every delivery goes through
#                the duplicate-id check and is new to it (the host runs with
#                --replay-memory 1000000: the ids taken are remembered
#                there, and 0 would turn the check off).
#    Recorded per case: requests/s, wrk's p50/p99, host CPU per request (and
#    the CPU wrk and everything else on the machine took meanwhile: it is
#    shared), and the medians' ratios hook / Cliq call.
# 2. Schedules' tick precision: 1, 20 and 100 schedules of every = "1s"
#    (bench/scripts-tasks/schedules/tick.lua, copied once per schedule) on
#    one idle host (store: SQLite) for TICK_S (20) ticks, then the same on
#    3 hosts sharing the Redis (each tick claimed by one). A run does
#    nothing, so its outcome line (timestamp in ms, tick, ms=) says when it
#    started; bench/tasks-ticks.py reads the logs: lateness (start - tick)
#    p50/p99/max and runs against ticks (each tick exactly once). The hosts'
#    CPU over the ticks, against an idle host without schedules measured
#    first, gives the CPU a run costs.
# 3. Serving while schedules run: the cliq case on a host without schedules
#    and on one with the 100, ROUNDS rounds taking turns (A B, B A, ...);
#    the medians' ratios (requests/s, CPU a request), and the lateness of
#    the runs whose ticks fell inside the load.
#
# Records bench/results/tasks-<UTC>.json and tasks-latest.json and prints a
# summary. Nothing is asserted on speed; the run is not valid (exit 1, after
# recording) when a request failed, a delivery was taken as a duplicate, or
# a tick was not run exactly once. Environment: ROUNDS (3), CONNS (64),
# TICK_S (20), MAX_RATE (80000). About 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${1:-6}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
TICK_S=${TICK_S:-20}
MAX_RATE=${MAX_RATE:-80000}
for v in "$DURATION" "$ROUNDS" "$CONNS" "$TICK_S" "$MAX_RATE"; do
  if ! [[ $v =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: bench/tasks.sh [SECONDS]   (env: ROUNDS, CONNS, TICK_S, MAX_RATE: positive" \
      "integers)" >&2
    exit 2
  fi
done
SCHEDULE_COUNTS=(1 20 100)
BUILD=build/bench
GITHUB_SECRET=bench-github-secret
SW_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

# command:package pairs; apt-get runs only for what is missing.
for dep in wrk:wrk openssl:openssl cmake:cmake pgrep:procps curl:curl python3:python3 \
  redis-server:redis-server redis-cli:redis-tools; do
  if ! command -v "${dep%%:*}" >/dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${dep#*:}"
  fi
done
echo "== building the host ($BUILD)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target cliqhost cliqhost-bench-sign >/dev/null

WORK=$(mktemp -d /tmp/cliqhost-tasks-bench-XXXXXX)
HOST_PIDS=()
REDIS_PID=
# Stops the hosts and Redis if still up (also when a step fails) and
# removes the scratch directory.
cleanup() {
  stop_all "${HOST_PIDS[@]}" "$REDIS_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CLK=$(getconf CLK_TCK)
INVALID=()

# ---- hosts -------------------------------------------------------------------

cat >"$WORK/config.lua" <<LUA
hooks = {
  github = { scheme = "github", secret = "$GITHUB_SECRET" },
  standard = { scheme = "standard-webhooks", secret = "$SW_SECRET", tolerance_s = 900 },
}
LUA
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/key.pem" 2>/dev/null
openssl pkey -in "$WORK/key.pem" -pubout -out "$WORK/key.pub"

# scripts_with N: a scripts directory with bench/scripts' command, the
# hooks and N schedules (tick-001 ..); prints its path.
scripts_with() {
  local dir="$WORK/scripts-$1"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir/schedules"
    cp -r bench/scripts/commands bench/scripts-tasks/hooks "$dir/"
    for i in $(seq "$1"); do
      cp bench/scripts-tasks/schedules/tick.lua "$dir/schedules/$(printf 'tick-%03d' "$i").lua"
    done
  fi
  echo "$dir"
}
# start_host NAME SCRIPTS FLAGS...: starts a host (2 workers, a data_dir of
# its own, log in $WORK/host-NAME.log); adds it to HOST_PIDS, sets HOST_PORT.
start_host() {
  local name=$1 scripts=$2
  shift 2
  rm -rf "$WORK/data-$name"
  "$BUILD/cliqhost" serve --config "$WORK/config.lua" --scripts "$scripts" --key "$WORK/key.pub" \
    --listen 127.0.0.1:0 --workers 2 --data-dir "$WORK/data-$name" "$@" \
    2>"$WORK/host-$name.log" &
  HOST_PIDS+=($!)
  HOST_PORT=$(wait_port "$WORK/host-$name.log")
}
# stop_hosts: stops every host started, waiting for each.
stop_hosts() {
  local p
  for p in "${HOST_PIDS[@]}"; do kill -TERM "$p"; done
  for p in "${HOST_PIDS[@]}"; do wait "$p" || true; done
  HOST_PIDS=()
}

# load OUT SCRIPT ARGS...: wrk -t1 -c$CONNS for DURATION s against the host
# at HOST_PORT (the newest started); its report in OUT, and in OUT.cpu the
# CPU ticks the host, wrk and anything else on the machine spent meanwhile
# ("HOST WRK ELSE"; wrk's include loading its requests; else is the other
# users of this shared machine).
load() {
  local out=$1 script=$2
  shift 2
  local pid=${HOST_PIDS[-1]} h0 m0 h w TIMEFORMAT='%U %S'
  h0=$(cpu_ticks "$pid") m0=$(machine_ticks)
  {
    time wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$script" "http://127.0.0.1:$HOST_PORT/" \
      -- "$@" >"$out"
  } 2>"$out.time"
  h=$(($(cpu_ticks "$pid") - h0))
  w=$(awk -v c="$CLK" '{printf "%d", ($1 + $2) * c}' "$out.time")
  echo "$h $w $(($(machine_ticks) - m0 - h - w))" >"$out.cpu"
}
# figures OUT: "REQUESTS RPS P50_MS P99_MS NON2XX SOCKET_ERRORS HOST_US WRK_S
# ELSE_S" from load's report (latencies in wrk's units: us, ms, s).
figures() {
  local h w e
  read -r h w e <"$1.cpu"
  awk -v h="$h" -v w="$w" -v e="$e" -v clk="$CLK" '
    function ms(s, v) { v = s + 0; return s ~ /us$/ ? v / 1000 : s ~ /ms$/ ? v : v * 1000 }
    /requests in/ {n = $1} /Requests\/sec/ {r = $2} /Non-2xx/ {x = $5}
    $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)}
    /Socket errors/ {gsub(",", ""); s = $4 + $6 + $8 + $10}
    END {printf "%d %s %.3f %.3f %d %d %.1f %.2f %.2f\n", n, r + 0, p50, p99, x, s,
         n ? h * 1e6 / clk / n : 0, w / clk, e / clk}' "$1"
}
# case_json NAME OUT: figures OUT as a JSON object, kept in $WORK/NAME.json;
# sets RPS, CPU_US and P99.
case_json() {
  local n rps p50 p99 x s us w e
  read -r n rps p50 p99 x s us w e <<<"$(figures "$2")"
  [ "$x" = 0 ] && [ "$s" = 0 ] || INVALID+=("$1: $x non-2xx answers, $s socket errors")
  RPS=$rps CPU_US=$us P99=$p99
  printf '{"requests":%s,"requests_per_s":%s,"p50_ms":%s,"p99_ms":%s,"non_2xx":%s,"socket_errors":%s,"host_cpu_us_per_request":%s,"wrk_cpu_s":%s,"anything_else_cpu_s":%s}' \
    "$n" "$rps" "$p50" "$p99" "$x" "$s" "$us" "$w" "$e" >"$WORK/$1.json"
}

# ---- 1. hooks against Cliq calls ---------------------------------------------

echo "== signing: 10,000 Cliq calls; $((MAX_RATE * (DURATION + 1))) Standard Webhooks deliveries"
"$BUILD/cliqhost-bench-sign" "$WORK/key.pem" 10000 "$WORK/cliq.txt"
python3 bench/hook-sign.py github "$GITHUB_SECRET" bench/hook-body.json "$WORK/github.txt"
python3 bench/hook-sign.py standard-webhooks "$SW_SECRET" bench/hook-body.json "$WORK/sw-warm.txt" \
  "$MAX_RATE" 0
python3 bench/hook-sign.py standard-webhooks "$SW_SECRET" bench/hook-body.json "$WORK/sw-timed.txt" \
  $((MAX_RATE * DURATION)) "$MAX_RATE"

# cliq_case NAME SCRIPTS: the cliq load on a fresh host serving SCRIPTS.
cliq_case() {
  start_host "$1" "$2" --replay-memory 0 --replay-window 900
  sleep 0.5
  wrk -t1 -c"$CONNS" -d1s -s bench/replay.lua "http://127.0.0.1:$HOST_PORT/" -- "$WORK/cliq.txt" \
    >/dev/null
  load "$WORK/wrk-$1.txt" bench/replay.lua "$WORK/cliq.txt"
  local failed
  failed=$(metric "$HOST_PORT" 'cliqhost_script_failures_total{kind="error"}')
  [ "$failed" = 0 ] || INVALID+=("$1: $failed handlers failed")
  stop_hosts
  case_json "$1" "$WORK/wrk-$1.txt"
}
# hook_case NAME HEADERS-WARM HEADERS-TIMED FLAGS...: the load on one hook.
hook_case() {
  local name=$1 warm=$2 timed=$3
  shift 3
  start_host "$name" "$(scripts_with 0)" "$@"
  sleep 0.5
  wrk -t1 -c"$CONNS" -d1s -s bench/hook.lua "http://127.0.0.1:$HOST_PORT/" \
    -- "/hooks/$name" bench/hook-body.json "$warm" >/dev/null
  load "$WORK/wrk-$name.txt" bench/hook.lua "/hooks/$name" bench/hook-body.json "$timed"
  local ran
  ran=$(metric "$HOST_PORT" "cliqhost_requests_total{type=\"hook\",handler=\"receive\",status=\"200\"}")
  stop_hosts
  case_json "$name" "$WORK/wrk-$name.txt"
  local dups sent
  dups=$(grep -c 'duplicate webhook id' "$WORK/host-$name.log" || true)
  sent=$(awk '/requests in/ {print $1}' "$WORK/wrk-$name.txt")
  [ "$dups" = 0 ] || INVALID+=("$name: $dups deliveries answered as duplicates")
  [ "$ran" -ge "$sent" ] || INVALID+=("$name: $ran hooks answered 200 for $sent requests")
  if [ "$name" = standard ] && [ "$sent" -gt "$(wc -l <"$timed")" ]; then
    INVALID+=("standard: $sent requests for $(wc -l <"$timed") deliveries (raise MAX_RATE)")
  fi
}

echo "== hooks against Cliq calls: $ROUNDS rounds of ${DURATION} s, wrk -t1 -c$CONNS"
cliq_rps=() gh_rps=() sw_rps=() cliq_us=() gh_us=() sw_us=() hook_rounds=()
for i in $(seq "$ROUNDS"); do
  cliq_case cliq "$(scripts_with 0)"
  cliq_rps+=("$RPS") cliq_us+=("$CPU_US")
  hook_case github "$WORK/github.txt" "$WORK/github.txt" --replay-memory 0
  gh_rps+=("$RPS") gh_us+=("$CPU_US")
  hook_case standard "$WORK/sw-warm.txt" "$WORK/sw-timed.txt" --replay-memory 1000000
  sw_rps+=("$RPS") sw_us+=("$CPU_US")
  echo "   round $i: cliq ${cliq_rps[-1]}/s (${cliq_us[-1]} us CPU), github ${gh_rps[-1]}/s" \
    "(${gh_us[-1]} us), standard-webhooks ${sw_rps[-1]}/s (${sw_us[-1]} us)"
  hook_rounds+=("{\"cliq\":$(cat "$WORK/cliq.json"),\"github\":$(cat "$WORK/github.json"),\"standard_webhooks\":$(cat "$WORK/standard.json")}")
done
cliq_med=$(median "${cliq_rps[@]}") gh_med=$(median "${gh_rps[@]}") sw_med=$(median "${sw_rps[@]}")
cliq_us_med=$(median "${cliq_us[@]}") gh_us_med=$(median "${gh_us[@]}")
sw_us_med=$(median "${sw_us[@]}")
gh_ratio=$(calc "$gh_med / $cliq_med") sw_ratio=$(calc "$sw_med / $cliq_med")
echo "   medians: cliq $cliq_med/s ($cliq_us_med us), github $gh_med/s ($gh_us_med us): x$gh_ratio," \
  "standard-webhooks $sw_med/s ($sw_us_med us): x$sw_ratio"

# ---- 2. schedules: tick precision --------------------------------------------

start_redis "$WORK/redis" || exit 1

# sleep_until UNIX_S: sleeps until the wall clock reaches UNIX_S.
sleep_until() { sleep "$(python3 -c "import time; print(max(0, $1 - time.time()))")"; }
# ticks_json FIRST END COUNT NAME LOG...: bench/tasks-ticks.py's figures of
# ticks FIRST .. END-1, kept in $WORK/NAME.json; a tick not run exactly once
# makes the run not valid.
ticks_json() {
  local name=$4
  python3 bench/tasks-ticks.py "$1" "$2" "$3" "${@:5}" >"$WORK/$name.json" 2>"$WORK/$name.bad" ||
    INVALID+=("$name: $(cat "$WORK/$name.bad")")
}
# sched_case COUNT HOSTS: COUNT schedules on HOSTS idle hosts (more than one:
# sharing the Redis) for TICK_S ticks; figures in $WORK/sched-COUNT-HOSTS.json.
sched_case() {
  local count=$1 hosts=$2 flags=() logs=() h
  if [ "$hosts" -gt 1 ]; then flags=(--store "$REDIS_URL"); fi
  redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
  for h in $(seq "$hosts"); do
    start_host "sched-$count-$h" "$(scripts_with "$count")" "${flags[@]}"
    logs+=("$WORK/host-sched-$count-$h.log")
  done
  local first=$(($(date +%s) + 2)) h0 r0 m0 h r m
  sleep_until "$first"
  h0=$(cpu_ticks "${HOST_PIDS[@]}") r0=$(cpu_ticks "$REDIS_PID") m0=$(machine_ticks)
  sleep_until $((first + TICK_S))
  h=$(($(cpu_ticks "${HOST_PIDS[@]}") - h0)) r=$(($(cpu_ticks "$REDIS_PID") - r0))
  m=$(($(machine_ticks) - m0 - h - r))
  sleep 0.8
  stop_hosts
  ticks_json "$first" $((first + TICK_S)) "$count" "sched-$count-$hosts" "${logs[@]}"
  # The hosts' CPU over the ticks, per second; beyond what as many idle
  # hosts without schedules spend (IDLE_MS_PER_S, the case of 0 schedules),
  # per run: what the schedules cost.
  [ "$hosts" -gt 1 ] || r=0
  local ms_s per_run=null
  ms_s=$(calc "$h * 1000 / $CLK / $TICK_S")
  [ "$count" = 0 ] || per_run=$(calc "($ms_s - $hosts * $IDLE_MS_PER_S) * 1000 / $count")
  sed -i "s/}\$/,\"hosts_cpu_ms_per_s\":$ms_s,\"hosts_cpu_us_per_run_beyond_idle\":$per_run,\"redis_cpu_ms_per_s\":$(calc "$r * 1000 / $CLK / $TICK_S"),\"anything_else_cpu_s\":$(calc "$m / $CLK")}/" \
    "$WORK/sched-$count-$hosts.json"
  [ "$count" != 0 ] || IDLE_MS_PER_S=$ms_s
  echo "   $count schedules, $hosts host(s): $(python3 -c 'import json, sys
f = json.load(open(sys.argv[1]))
print("%s/%s ticks run; late p50 %s ms, p99 %s ms, max %s ms; runs per host %s; hosts CPU %s "
      "ms/s, %s us a run beyond idle" % (f["runs"], f["ticks"], f["late_p50_ms"],
      f["late_p99_ms"], f["late_max_ms"], f["runs_per_host"], f["hosts_cpu_ms_per_s"],
      f["hosts_cpu_us_per_run_beyond_idle"]))' \
    "$WORK/sched-$count-$hosts.json")"
}

echo "== schedules of every = \"1s\", $TICK_S ticks each, idle hosts"
IDLE_MS_PER_S=0
sched_case 0 1
for hosts in 1 3; do
  for count in "${SCHEDULE_COUNTS[@]}"; do sched_case "$count" "$hosts"; done
done

# ---- 3. serving while schedules run --------------------------------------------

echo "== Cliq calls with no schedules and with 100 of every 1s: $ROUNDS rounds of ${DURATION} s"
none_rps=() busy_rps=() none_us=() busy_us=() none_p99=() busy_p99=() serve_rounds=()
# serve_none, serve_busy: one turn of each; they go in turns A B B A ...,
# so that a drift in what else the machine does touches both alike.
serve_none() {
  cliq_case serve-none "$(scripts_with 0)"
  none_rps+=("$RPS") none_us+=("$CPU_US") none_p99+=("$P99")
}
serve_busy() {
  # The ticks wholly inside the timed load: from the second after it starts
  # (a 0.5 s pause and a 1 s warm-up come first) to the one before it ends.
  t_start=$(($(date +%s) + 3))
  cliq_case serve-100 "$(scripts_with 100)"
  t_end=$(($(date +%s) - 1))
  busy_rps+=("$RPS") busy_us+=("$CPU_US") busy_p99+=("$P99")
}
for i in $(seq "$ROUNDS"); do
  if [ $((i % 2)) = 1 ]; then serve_none; serve_busy; else serve_busy; serve_none; fi
  if [ "$t_end" -gt "$t_start" ]; then
    ticks_json "$t_start" "$t_end" 100 "serve-ticks-$i" "$WORK/host-serve-100.log"
  else
    echo null >"$WORK/serve-ticks-$i.json" # a load too short to hold a whole tick
  fi
  echo "   round $i: none ${none_rps[-1]}/s (${none_us[-1]} us CPU, p99 ${none_p99[-1]} ms)," \
    "100 schedules ${busy_rps[-1]}/s (${busy_us[-1]} us, p99 ${busy_p99[-1]} ms)"
  serve_rounds+=("{\"no_schedules\":$(cat "$WORK/serve-none.json"),\"with_100_schedules\":$(cat "$WORK/serve-100.json"),\"ticks_during_load\":$(cat "$WORK/serve-ticks-$i.json")}")
done
none_med=$(median "${none_rps[@]}") busy_med=$(median "${busy_rps[@]}")
none_us_med=$(median "${none_us[@]}") busy_us_med=$(median "${busy_us[@]}")
none_p99_med=$(median "${none_p99[@]}") busy_p99_med=$(median "${busy_p99[@]}")
serve_ratio=$(calc "$busy_med / $none_med") serve_cpu_ratio=$(calc "$busy_us_med / $none_us_med")
echo "   medians: none $none_med/s ($none_us_med us, p99 $none_p99_med ms), 100 schedules" \
  "$busy_med/s ($busy_us_med us, p99 $busy_p99_med ms): x$serve_ratio requests/s," \
  "x$serve_cpu_ratio CPU a request"

# ---- results -------------------------------------------------------------------

sched_json() {
  local hosts=$1 c sep=""
  for c in "${SCHEDULE_COUNTS[@]}"; do
    printf '%s"%s":%s' "$sep" "$c" "$(cat "$WORK/sched-$c-$hosts.json")"
    sep=,
  done
}
mkdir -p bench/results
stamp=$(date -u +%Y%m%d-%H%M%S)
out="bench/results/tasks-$stamp.json"
cat >"$out" <<JSON
{
  "benchmark": "tasks: hooks (github, standard-webhooks) against signed Cliq calls; schedules' tick precision on one host and on three sharing Redis; Cliq calls while 100 schedules run",
$(result_head)
  "redis": "$REDIS_VERSION, on 127.0.0.1, persistence off",
  "setup": "everything on this machine; hosts with 2 workers. Hooks: $ROUNDS rounds of three cases taking turns, each a fresh host, wrk -t1 -c$CONNS for ${DURATION} s after a 1 s warm-up; cliq: the 10,000 signed ~1.2 KB calls of cliqhost-bench-sign (bench/replay.lua) to bench/scripts/commands/bench.lua, --replay-memory 0 --replay-window 900 (stamped at signing); github: POST /hooks/github, one ~1.1 KB JSON body (bench/hook-body.json) with its X-Hub-Signature-256, --replay-memory 0 (the scheme has no ids); standard_webhooks: POST /hooks/standard, the same body as $((MAX_RATE * DURATION)) deliveries with distinct webhook-ids signed beforehand (tolerance_s 900), each sent once, --replay-memory 1000000 (the duplicate-id check on, every id new); the hooks' receive() returns {ok = true}. Host CPU per request from /proc; wrk_cpu_s includes loading its requests. Schedules: 1, 20 and 100 schedules of every = \"1s\" with an empty run, on an idle host (store SQLite) and on 3 hosts sharing the Redis, ticks of $TICK_S s from 2 s after the hosts listened; lateness = the outcome line's timestamp - its ms= - the tick, in ms; each tick must run exactly once over the hosts; hosts_cpu_ms_per_s: the hosts' CPU over the ticks, per second (from /proc, in clock ticks of $((1000 / CLK)) ms: about $(calc "1000 / $CLK / $TICK_S") ms/s of resolution); hosts_cpu_us_per_run_beyond_idle: beyond as many idle hosts without schedules (idle_host_without_schedules), per run. Serving: the cliq case on a host without schedules and on one with 100 schedules of every 1s, $ROUNDS rounds taking turns (A B, B A, ...); ticks_during_load: the runs whose ticks fell wholly inside that load. anything_else_cpu_s: CPU the machine spent meanwhile besides the host and wrk (or the hosts and Redis): other users of this shared machine.",
  "hooks": {
    "rounds": [$(IFS=,; echo "${hook_rounds[*]}")],
    "median_requests_per_s": {"cliq": $cliq_med, "github": $gh_med, "standard_webhooks": $sw_med},
    "median_host_cpu_us_per_request": {"cliq": $cliq_us_med, "github": $gh_us_med, "standard_webhooks": $sw_us_med},
    "github_over_cliq": $gh_ratio,
    "standard_webhooks_over_cliq": $sw_ratio
  },
  "schedules": {
    "tick_seconds": $TICK_S,
    "idle_host_without_schedules": $(cat "$WORK/sched-0-1.json"),
    "one_host": {$(sched_json 1)},
    "three_hosts_on_redis": {$(sched_json 3)}
  },
  "serving_with_schedules": {
    "rounds": [$(IFS=,; echo "${serve_rounds[*]}")],
    "median_requests_per_s_no_schedules": $none_med,
    "median_requests_per_s_100_schedules": $busy_med,
    "median_host_cpu_us_per_request_no_schedules": $none_us_med,
    "median_host_cpu_us_per_request_100_schedules": $busy_us_med,
    "median_p99_ms_no_schedules": $none_p99_med,
    "median_p99_ms_100_schedules": $busy_p99_med,
    "with_100_schedules_over_none": $serve_ratio,
    "cpu_per_request_with_100_schedules_over_none": $serve_cpu_ratio
  },
  "valid": $([ ${#INVALID[@]} = 0 ] && echo true || echo false),
  "invalid_because": [$(json_strings "${INVALID[@]}")]
}
JSON
python3 -m json.tool "$out" >/dev/null
cp "$out" bench/results/tasks-latest.json
echo "== recorded $out"
if [ ${#INVALID[@]} != 0 ]; then
  printf 'NOT VALID: %s\n' "${INVALID[@]}" >&2
  exit 1
fi
