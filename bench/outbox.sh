#!/usr/bin/env bash
# bench/outbox.sh [N]: the outbox benchmark (issue 4). Handlers queue N channel
# posts (default 100,000) through cliq.post_channel(..., {wait = false}) into
# the host's durable SQLite outbox (WAL), which delivers them to a local sink
# standing in for Cliq's incoming-webhook endpoint. Records, for each
# post_concurrency tried (posts in flight to the sink; default cases 64, the
# host's default, and 256), over RUNS bursts of N posts on one host (the
# case's figures are the run with the median delivered/s; all runs are kept):
#
#   accepted   posts/s durably queued: N / time until the last call's reply
#   delivered  posts/s received by the sink: N / time until the N-th arrived
#              (both timed from the first call, on CLOCK_MONOTONIC)
#   backlog    N posts queued while the sink stalls (accepted/s when nothing
#              is delivered, the database's size with N queued), then the
#              time to drain them once the sink answers again
#   queue delay when nothing is wrong: with the outbox idle, PROBES single
#              posts one at a time, waiting (wait = true) and not (wait = false),
#              against a baseline call whose handler posts nothing
#   the host's CPU seconds (and per thread), peak RSS, the database's size
#   after the bursts, with the backlog and after the host stopped, that the
#   outbox is empty afterwards (`cliqhost outbox`), and that the sink got each
#   post exactly once (and the token's invocation count agrees)
#
# into bench/results/outbox-<UTC>.json and outbox-latest.json.
# Target: at least 5,000 posts/s delivered with SQLite in WAL mode. The script
# exits 1 (after recording) when the first case (the host's default
# post_concurrency, 64) misses it, or when any case loses or repeats a post,
# fails a call, or leaves the outbox non-empty; another case below the target
# is recorded and warned about. The CPU time of everything else on the machine
# during each burst is recorded too: the machine is shared, and a busy
# neighbour explains a slow run.
#
# Pieces, all on this machine:
#   bench/outbox-sink.c    answers every request at once with 204 (as Cliq's channel
#                          endpoint does), counts channel posts, checks the zapikey,
#                          stamps probe arrivals on CLOCK_MONOTONIC; SIGUSR2 stalls
#                          and resumes it
#   bench/outbox-load.c    C keep-alive connections sending unsigned command calls
#                          one after another, each timed on CLOCK_MONOTONIC
#   bench/scripts-outbox/commands/burst.lua   posts options.count messages, wait = false
#   bench/scripts-outbox/commands/probe.lua   one post "probe-<id>", wait as asked
#   bench/scripts-outbox/commands/noop.lua    the baseline: the same call, no post
# The host runs with --no-verify on 127.0.0.1 (no signatures: this measures the
# outbox, not RSA; bench/run.sh measures signed calls). The tools are single
# files built with cc into build/bench-tools/; the host builds in build/bench/.
#
# Environment: K=posts per call (1000), CLIENTS=concurrent calls (16),
# CONCURRENCIES="64 256" (post_concurrency of each case), RUNS=3, PROBES=200,
# HOST_FLAGS="..." adds flags to `cliqhost serve` (recorded in the results),
# KEEP_WORK=1 keeps the scratch folder (logs, per-call and per-probe times).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
K=${K:-1000}
CLIENTS=${CLIENTS:-16}
CONCURRENCIES=${CONCURRENCIES:-64 256}
PROBES=${PROBES:-200}
RUNS=${RUNS:-3}
PROBE_GAP_MS=5
HOST_FLAGS=${HOST_FLAGS:-}
WORKERS=2
TARGET=5000
WARM_POSTS=10 # per client, before the timed burst (loads the handler in each worker)
TOKEN=bench-token
if ! [[ $N =~ ^[1-9][0-9]*$ && $K =~ ^[1-9][0-9]*$ && $CLIENTS =~ ^[1-9][0-9]*$ &&
  $PROBES =~ ^[1-9][0-9]*$ && $RUNS =~ ^[1-9][0-9]*$ && $CONCURRENCIES =~ ^[1-9][0-9\ ]*$ ]]; then
  echo "usage: bench/outbox.sh [N]   (env: K=posts per call, CLIENTS=n, CONCURRENCIES=\"64 256\"," \
    "RUNS=n, PROBES=n, HOST_FLAGS=..., KEEP_WORK=1)" >&2
  exit 2
fi
[ "$K" -gt "$N" ] && K=$N
if [ $((N % K)) -ne 0 ]; then
  echo "N ($N) must be a multiple of K ($K), the posts per call" >&2
  exit 2
fi
CALLS=$((N / K))

# ---- what it needs ---------------------------------------------------------

PKGS=(build-essential cmake pkg-config liblua5.4-dev libmicrohttpd-dev libssl-dev libcjson-dev
      libcurl4-openssl-dev libsqlite3-dev)
missing=()
for p in "${PKGS[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

echo "== building the host (build/bench) and the tools (build/bench-tools)"
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/bench -j"$(nproc)" --target cliqhost >/dev/null
TOOLS=build/bench-tools
mkdir -p "$TOOLS"
# build_tool NAME SOURCE [LIBS]: compiles next to the old binary, then swaps it
# in, so a second run never sees a half-written tool.
build_tool() {
  local name=$1 src=$2
  shift 2
  cc -O2 -Wall -Wextra -o "$TOOLS/.$name.$$" "$src" "$@"
  mv -f "$TOOLS/.$name.$$" "$TOOLS/$name"
}
build_tool outbox-sink bench/outbox-sink.c
build_tool outbox-load bench/outbox-load.c -lpthread
HOST=build/bench/cliqhost

WORK=$(mktemp -d /tmp/cliqhost-outbox-XXXXXX)
HOST_PID=""
SINK_PID=""
CHILD_PID=""
stop() { # stop PID...: TERM, then wait for each
  local pid
  for pid; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  done
  for pid; do
    if [ -n "$pid" ]; then wait "$pid" 2>/dev/null || true; fi
  done
}
cleanup() {
  stop "$CHILD_PID" "$HOST_PID" "$SINK_PID"
  if [ -n "${KEEP_WORK:-}" ]; then
    echo "== kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# run CMD...: runs CMD in the background and waits for it, so that an
# interrupt reaches the trap at once (bash runs a trap only after the
# foreground command ends); returns CMD's status.
run() {
  "$@" &
  CHILD_PID=$!
  local rc=0
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=""
  return "$rc"
}

# ---- helpers ---------------------------------------------------------------------

# jget FILE KEY: a number from the flat JSON objects the tools print (0 when
# the file or the key is missing, e.g. after a tool failed).
jget() {
  local v
  v=$(sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1" 2>/dev/null | tail -n 1)
  echo "${v:-0}"
}
# calc EXPR: floating-point arithmetic.
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# machine_ticks: "BUSY STEAL" of all cores from /proc/stat (user, nice, system,
# irq, softirq; and time the hypervisor gave to others), in ticks.
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat; }
CLK=$(getconf CLK_TCK)
# thread_ticks PID: "TID TICKS" for each of PID's threads.
thread_ticks() {
  local t
  for t in /proc/"$1"/task/*; do
    echo "${t##*/} $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0)"
  done
}
# fsize FILE: its size in bytes, 0 when it is not there.
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }
# pct FILE: {"p50":..,"p99":..,"max":..} of the numbers in FILE, one a line
# (p99 is the value at index floor(0.99 n) of the sorted list, as outbox-load).
pct() {
  sort -g "$1" | awk '{ v[NR - 1] = $1 } END {
    if (NR == 0) { print "{\"p50\":null,\"p99\":null,\"max\":null}"; exit }
    i = int(NR * 0.99); if (i >= NR) i = NR - 1
    printf "{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}", v[int(NR / 2)], v[i], v[NR - 1] }'
}

# listen_ports PID: how many TCP sockets PID listens on, and the port, e.g.
# "2 40123" (each worker has its own SO_REUSEPORT listener on the same port).
# Reads /proc, because --log-level warn hides the "listening on" line.
listen_ports() {
  local inodes hex count
  inodes=$(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n')
  read -r count hex < <(awk -v list="$inodes" '
    BEGIN { n = split(list, a, "\n"); for (i = 1; i <= n; i++) if (a[i] != "") want[a[i]] = 1 }
    $4 == "0A" && ($10 in want) { c++; split($2, p, ":"); port = p[2] }
    END { print c + 0, port }' /proc/net/tcp)
  [ "$count" -gt 0 ] && echo "$count $((16#$hex))"
  return 0
}

# The sink is polled while the host works, on the same two cores, so polling
# uses shell builtins only: forking a process per check (wc, tail, sed,
# sleep) every few milliseconds costs the host a good part of a core here.
# nap SECONDS: sleeps without a process (read on a pipe nobody writes).
exec {NAP_FD}<> <(:)
nap() { read -r -t "$1" -u "$NAP_FD" _ || true; }

# sink_lines: the sink's complete lines into LINES; one it is still
# writing (no newline yet) is left out, so it is never read cut short.
sink_lines() {
  local text=
  IFS= read -r -d '' text <"$CASE/sink.out" || true
  LINES=()
  if [[ $text == *$'\n'* ]]; then
    mapfile -t LINES <<<"${text%$'\n'*}"
  fi
}

# sink_signal SIGNAL OUT: sends SIGNAL to the sink and writes the line it
# prints in answer to OUT (also left in SINK_LINE).
sink_signal() {
  local before i
  sink_lines
  before=${#LINES[@]}
  kill "-$1" "$SINK_PID"
  for ((i = 0; i < 500; i++)); do
    sink_lines
    [ "${#LINES[@]}" -gt "$before" ] && break
    nap 0.002
  done
  SINK_LINE=${LINES[${#LINES[@]} - 1]}
  printf '%s\n' "$SINK_LINE" >"$2"
}
# sink_stats OUT: the sink's counters (SIGUSR1; they are never reset).
sink_stats() { sink_signal USR1 "$1"; }
# sink_toggle OUT: stalls or resumes the sink (SIGUSR2); OUT gets
# {"paused":...,"at_ns":...}.
sink_toggle() { sink_signal USR2 "$1"; }

# wait_delivered TOTAL TIMEOUT_S: polls the sink every 0.1 s until it has
# TOTAL channel posts in all (leaving its last stats in $CASE/sink-now.json).
# Returns 1 on timeout. (Times come from the sink's own stamps, not from
# when the poll noticed.)
wait_delivered() {
  local total=$1 deadline=$((SECONDS + $2))
  for (( ; ; )); do
    sink_stats "$CASE/sink-now.json"
    [[ $SINK_LINE =~ \"channel_posts\":([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -ge "$total" ] && return 0
    [ $SECONDS -ge $deadline ] && return 1
    nap 0.1
  done
}

# ---- one burst: N posts, timed ------------------------------------------------------

# burst_run R C PORT: run R of case C (post_concurrency) against the host on
# PORT: CLIENTS connections send CALLS calls of K posts, then waits until the
# sink has all N. Writes $CASE/run-R.json, appends "R DELIVERED/S ACCEPTED/S"
# to $CASE/runs.txt, adds to ACCEPTED_SUM and clears LOAD_FAILED/DELIVERED_ALL
# on trouble.
burst_run() {
  local r=$1 conc=$2 port=$3
  local B=$CASE/burst-$r.json
  echo "== post_concurrency $conc, run $r of $RUNS: $CLIENTS clients, $CALLS calls of $K posts" \
    "($N in all)"
  sink_stats "$CASE/sink-start-$r.json"
  local base conns0
  base=$(jget "$CASE/sink-start-$r.json" channel_posts)
  conns0=$(jget "$CASE/sink-start-$r.json" connections_accepted)
  thread_ticks "$HOST_PID" >"$CASE/threads0-$r"
  local t0 t1 m0 m1 st0 st1 s0 s1
  read -r m0 st0 < <(machine_ticks)
  s0=$(cpu_ticks "$SINK_PID")
  t0=$(cpu_ticks "$HOST_PID")
  local load_rc=0
  run "$TOOLS/outbox-load" --connect "127.0.0.1:$port" --command burst --requests "$CALLS" \
    --concurrency "$CLIENTS" --count "$K" --timeout 120 --out "$CASE/burst-calls-$r.txt" \
    >"$B" 2>"$CASE/burst-$r.err" || load_rc=$?
  local delivered_all=true
  if ! wait_delivered $((base + N)) $((60 + N / 1000)); then
    delivered_all=false
    DELIVERED_ALL=false
    echo "!! the sink got $(($(jget "$CASE/sink-now.json" channel_posts) - base)) of $N" \
      "posts in time" >&2
  fi
  t1=$(cpu_ticks "$HOST_PID")
  s1=$(cpu_ticks "$SINK_PID")
  read -r m1 st1 < <(machine_ticks)
  thread_ticks "$HOST_PID" >"$CASE/threads1-$r"
  local S=$CASE/sink-end-$r.json
  cp "$CASE/sink-now.json" "$S"
  if [ "$load_rc" -ne 0 ]; then
    LOAD_FAILED=true
    echo "!! the load tool failed (status $load_rc):" >&2
    head -n 5 "$CASE/burst-$r.err" >&2
  fi

  local start_ns end_ns last_ns got accepted acc_s del_s acc_ps del_ps lag_s
  start_ns=$(jget "$B" start_ns)
  end_ns=$(jget "$B" end_ns)
  last_ns=$(jget "$S" last_ns)
  got=$(($(jget "$S" channel_posts) - base))
  accepted=$(jget "$B" accepted)
  ACCEPTED_SUM=$((ACCEPTED_SUM + accepted))
  [ "$accepted" -eq "$N" ] || LOAD_FAILED=true
  acc_s=$(calc "($end_ns - $start_ns) / 1e9")
  del_s=$(calc "($last_ns - $start_ns) / 1e9")
  acc_ps=$(calc "$accepted / $acc_s")
  del_ps=$(calc "$got / $del_s")
  lag_s=$(calc "($last_ns - $end_ns) / 1e9")
  [ "$delivered_all" = true ] || del_ps=$(calc "$got / (($(jget "$S" now_ns) - $start_ns) / 1e9)")
  local cpu_s cpu_us threads_json
  cpu_s=$(calc "($t1 - $t0) / $CLK")
  cpu_us=$(calc "($t1 - $t0) / $CLK * 1e6 / $N")
  threads_json=$(awk -v clk="$CLK" 'NR == FNR { a[$1] = $2; next }
      { d = $2 - a[$1]; if (d > 0) printf "%s %.2f\n", $1, d / clk }' \
      "$CASE/threads0-$r" "$CASE/threads1-$r" | sort -k2 -gr |
    awk 'BEGIN { printf "[" } { printf "%s{\"tid\":%s,\"cpu_s\":%s}", (NR > 1 ? "," : ""), $1, $2 }
         END { printf "]" }')
  # What else ran meanwhile: the machine is shared, so a busy neighbour (or
  # the hypervisor's steal) shows here and explains a slow run.
  local busy_s sink_cpu_s load_cpu_s others_s steal_s
  busy_s=$(calc "($m1 - $m0) / $CLK")
  steal_s=$(calc "($st1 - $st0) / $CLK")
  sink_cpu_s=$(calc "($s1 - $s0) / $CLK")
  load_cpu_s=$(jget "$B" cpu_s)
  others_s=$(calc "$busy_s - $cpu_s - $sink_cpu_s - $load_cpu_s")
  echo "   accepted $accepted in ${acc_s} s: ${acc_ps}/s; delivered $got in ${del_s} s:" \
    "${del_ps}/s (the last ${lag_s} s after the last reply)"
  echo "   CPU: host ${cpu_s} s, sink ${sink_cpu_s} s, loader ${load_cpu_s} s, anything else" \
    "${others_s} s, stolen ${steal_s} s, of $(calc "$del_s * $(nproc)") core-seconds"
  echo "$r $del_ps $acc_ps" >>"$CASE/runs.txt"
  cat >"$CASE/run-$r.json" <<JSON
      {"run": $r,
       "accepted": {"posts": $accepted, "seconds": $acc_s, "per_s": $acc_ps, "call_errors": $(jget "$B" errors),
                    "call_ms": {"p50": $(jget "$B" p50_ms), "p99": $(jget "$B" p99_ms), "max": $(jget "$B" max_ms)}},
       "delivered": {"posts": $got, "all": $delivered_all, "seconds": $del_s, "per_s": $del_ps,
                     "last_after_last_reply_s": $lag_s},
       "cpu_s": {"host": $cpu_s, "host_us_per_post": $cpu_us, "host_threads": $threads_json,
                 "sink": $sink_cpu_s, "loader": $load_cpu_s, "anything_else": $others_s,
                 "machine_busy": $busy_s, "stolen": $steal_s, "cores": $(nproc)},
       "sink_connections_opened": $(($(jget "$S" connections_accepted) - conns0))}
JSON
}

# ---- a backlog: N posts queued while the sink stalls, then drained ------------------

# backlog_run C PORT: with the sink stalled (requests read by nobody, as when
# Cliq hangs), CLIENTS connections queue N posts (what accepting costs when
# nothing is delivered); then the sink resumes and the time to drain the whole
# backlog is taken. Writes $CASE/backlog.json; adds to ACCEPTED_SUM.
backlog_run() {
  local conc=$1 port=$2
  local B=$CASE/backlog-load.json
  echo "== post_concurrency $conc, backlog: $N posts queued while the sink stalls, then drained"
  sink_stats "$CASE/backlog-start.json"
  local base
  base=$(jget "$CASE/backlog-start.json" channel_posts)
  sink_toggle "$CASE/backlog-pause.json"
  local t0 t1 t2
  t0=$(cpu_ticks "$HOST_PID")
  local load_rc=0
  run "$TOOLS/outbox-load" --connect "127.0.0.1:$port" --command burst --requests "$CALLS" \
    --concurrency "$CLIENTS" --count "$K" --timeout 120 >"$B" 2>"$CASE/backlog-load.err" ||
    load_rc=$?
  t1=$(cpu_ticks "$HOST_PID")
  local db_q wal_q accepted acc_s acc_ps
  db_q=$(fsize "$CASE/data/outbox.db")
  wal_q=$(fsize "$CASE/data/outbox.db-wal")
  accepted=$(jget "$B" accepted)
  ACCEPTED_SUM=$((ACCEPTED_SUM + accepted))
  if [ "$load_rc" -ne 0 ] || [ "$accepted" -ne "$N" ]; then
    LOAD_FAILED=true
    echo "!! the load tool failed (status $load_rc, $accepted accepted):" >&2
    head -n 5 "$CASE/backlog-load.err" >&2
  fi
  acc_s=$(calc "($(jget "$B" end_ns) - $(jget "$B" start_ns)) / 1e9")
  acc_ps=$(calc "$accepted / $acc_s")
  local m1 st1 s1 m2 st2 s2
  read -r m1 st1 < <(machine_ticks)
  s1=$(cpu_ticks "$SINK_PID")
  sink_toggle "$CASE/backlog-resume.json"
  local resumed_ns drained=true
  resumed_ns=$(jget "$CASE/backlog-resume.json" at_ns)
  if ! wait_delivered $((base + accepted)) $((60 + N / 1000)); then
    drained=false
    DELIVERED_ALL=false
    echo "!! the backlog did not drain in time" >&2
  fi
  t2=$(cpu_ticks "$HOST_PID")
  s2=$(cpu_ticks "$SINK_PID")
  read -r m2 st2 < <(machine_ticks)
  local host_s sink_s others_s
  host_s=$(calc "($t2 - $t1) / $CLK")
  sink_s=$(calc "($s2 - $s1) / $CLK")
  others_s=$(calc "($m2 - $m1) / $CLK - $host_s - $sink_s")
  local S=$CASE/sink-now.json got drain_s drain_ps
  got=$(($(jget "$S" channel_posts) - base))
  drain_s=$(calc "($(jget "$S" last_ns) - $resumed_ns) / 1e9")
  drain_ps=$(calc "$got / $drain_s")
  echo "   accepted $accepted in ${acc_s} s with nothing delivered: ${acc_ps}/s;" \
    "database $db_q bytes + WAL $wal_q bytes with the backlog queued"
  echo "   drained $got in ${drain_s} s after the sink resumed: ${drain_ps}/s;" \
    "CPU: host $host_s s, sink $sink_s s, anything else $others_s s"
  cat >"$CASE/backlog.json" <<JSON
{
      "accepted_while_stalled": {"posts": $accepted, "seconds": $acc_s, "per_s": $acc_ps,
                                 "call_errors": $(jget "$B" errors),
                                 "call_ms": {"p50": $(jget "$B" p50_ms), "p99": $(jget "$B" p99_ms), "max": $(jget "$B" max_ms)},
                                 "host_cpu_s": $(calc "($t1 - $t0) / $CLK")},
      "db_bytes_queued": $db_q, "wal_bytes_queued": $wal_q,
      "drain": {"posts": $got, "all": $drained, "seconds": $drain_s, "per_s": $drain_ps,
                "cpu_s": {"host": $host_s, "sink": $sink_s, "anything_else": $others_s,
                          "stolen": $(calc "($st2 - $st1) / $CLK")}}
    }
JSON
}

# ---- one case: a host with post_concurrency C ------------------------------------

# run_case C: starts a sink and a host, runs the burst and the probes, stops
# both, and writes the case's figures to $WORK/case-C.json.
run_case() {
  local conc=$1
  CASE=$WORK/c$conc
  mkdir -p "$CASE"
  local data=$CASE/data cfg=$CASE/config.lua

  "$TOOLS/outbox-sink" --listen 127.0.0.1:0 --token "$TOKEN" --probe-log "$CASE/probes.txt" \
    >"$CASE/sink.out" 2>"$CASE/sink.err" &
  SINK_PID=$!
  local sink_port=""
  for _ in $(seq 100); do
    sink_port=$(sed -n 's/^listening on [^:]*:\([0-9]*\).*/\1/p' "$CASE/sink.out")
    [ -n "$sink_port" ] && break
    sleep 0.05
  done
  if [ -z "$sink_port" ]; then
    echo "!! the sink did not start:" >&2
    cat "$CASE/sink.err" >&2
    exit 1
  fi
  cat >"$cfg" <<EOF
-- bench/outbox.sh: the outbox posts to the local sink, unpaced.
tokens = { default = "$TOKEN" }
cliq_api = "http://127.0.0.1:$sink_port"
data_dir = "$data"
post_rate_per_min = 0
post_concurrency = $conc
-- Posts held by the stalled sink in the backlog run must not time out.
http_timeout_ms = 120000
-- The backlog run queues N posts at once, past the default caps.
outbox_max_queued = 1000000
outbox_max_queued_per_token = 1000000
EOF

  HOST_CMD=("$HOST" serve --config "$cfg" --no-verify --listen 127.0.0.1:0 --workers "$WORKERS"
            --scripts bench/scripts-outbox --log-level warn --deadline 60000)
  # shellcheck disable=SC2206 # HOST_FLAGS is split into words on purpose
  HOST_CMD+=($HOST_FLAGS)
  "${HOST_CMD[@]}" 2>"$CASE/host.log" &
  HOST_PID=$!
  local host_port="" count port
  for _ in $(seq 200); do
    if ! kill -0 "$HOST_PID" 2>/dev/null; then
      echo "!! the host exited at start:" >&2
      cat "$CASE/host.log" >&2
      HOST_PID=""
      exit 1
    fi
    read -r count port < <(listen_ports "$HOST_PID"; echo "0 0") || true
    if [ "$count" -ge "$WORKERS" ]; then
      host_port=$port
      break
    fi
    sleep 0.05
  done
  if [ -z "$host_port" ]; then
    echo "!! the host did not listen within 10 s:" >&2
    cat "$CASE/host.log" >&2
    exit 1
  fi
  local load=("$TOOLS/outbox-load" --connect "127.0.0.1:$host_port")
  local idle_rss
  idle_rss=$(kb "$HOST_PID" VmRSS)

  # Warm-up: each worker loads its scripts and the outbox opens its
  # connections; the probes' handlers load too.
  local warm=$((CLIENTS * WARM_POSTS))
  run "${load[@]}" --command burst --requests "$CLIENTS" --concurrency "$CLIENTS" \
    --count "$WARM_POSTS" >"$CASE/warm.json" 2>"$CASE/warm.err" || true
  run "${load[@]}" --command noop --requests 20 --concurrency 4 >/dev/null 2>&1 || true
  run "${load[@]}" --command probe --requests 1 --probe --probe-from 1000000 >/dev/null 2>&1 || true
  warm=$((warm + 1))
  if ! wait_delivered "$warm" 30; then
    echo "!! the warm-up's $warm posts did not all arrive within 30 s" >&2
  fi
  cp "$CASE/sink-now.json" "$CASE/sink-before.json"
  local base
  base=$(jget "$CASE/sink-before.json" channel_posts)

  # (a) accepted and (b) delivered, RUNS times on the same host; the case's
  # figures are those of the run with the median delivered/s.
  ACCEPTED_SUM=0
  LOAD_FAILED=false
  DELIVERED_ALL=true
  : >"$CASE/runs.txt"
  local r
  for r in $(seq "$RUNS"); do
    burst_run "$r" "$conc" "$host_port"
  done
  local median acc_ps del_ps runs_json
  median=$(sort -k2 -g "$CASE/runs.txt" | awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }')
  read -r _ del_ps acc_ps < <(awk -v m="$median" '$1 == m' "$CASE/runs.txt")
  runs_json=$(for r in $(seq "$RUNS"); do cat "$CASE/run-$r.json"; echo ","; done | sed '$ d')
  echo "   median of $RUNS runs (run $median): accepted ${acc_ps}/s, delivered ${del_ps}/s"
  # SQLite never shrinks the database file (no auto_vacuum) nor, while the
  # host has it open, the WAL (no journal_size_limit), so these are the
  # largest they grew to so far.
  local db_bursts wal_bursts
  db_bursts=$(fsize "$data/outbox.db")
  wal_bursts=$(fsize "$data/outbox.db-wal")

  # A backlog: queued while the sink stalls, then drained.
  backlog_run "$conc" "$host_port"
  local peak_rss db_after wal_after
  peak_rss=$(kb "$HOST_PID" VmHWM)
  db_after=$(fsize "$data/outbox.db")
  wal_after=$(fsize "$data/outbox.db-wal")

  # (c) the queue delay when nothing is wrong: the outbox is idle, one call
  # at a time with a pause between them.
  sleep 1
  echo "== queue delay: $PROBES single posts, one at a time, outbox idle"
  local P=("${load[@]}" --requests "$PROBES" --gap-ms "$PROBE_GAP_MS")
  run "${P[@]}" --command noop --out "$CASE/noop.txt" >"$CASE/noop.json" 2>"$CASE/noop.err" || true
  run "${P[@]}" --command probe --probe --probe-from 0 --wait 1 --out "$CASE/wait.txt" \
    >"$CASE/wait.json" 2>"$CASE/wait.err" || true
  run "${P[@]}" --command probe --probe --probe-from 10000 --wait 0 --out "$CASE/nowait.txt" \
    >"$CASE/nowait.json" 2>"$CASE/nowait.err" || true
  wait_delivered $((base + ACCEPTED_SUM + 2 * PROBES)) 30 || true
  cp "$CASE/sink-now.json" "$CASE/sink-final.json"
  # Call times in ms; the waiting call minus the baseline's median; request
  # sent to probe arrived at the sink.
  awk '$4 == 200 { printf "%.3f\n", ($3 - $2) / 1e6 }' "$CASE/noop.txt" >"$CASE/noop.ms"
  awk '$4 == 200 { printf "%.3f\n", ($3 - $2) / 1e6 }' "$CASE/wait.txt" >"$CASE/wait.ms"
  awk '$4 == 200 { printf "%.3f\n", ($3 - $2) / 1e6 }' "$CASE/nowait.txt" >"$CASE/nowait.ms"
  local base_p50
  base_p50=$(sort -g "$CASE/noop.ms" | awk '{ v[NR - 1] = $1 } END { print v[int(NR / 2)] + 0 }')
  awk -v b="$base_p50" '{ printf "%.3f\n", $1 - b }' "$CASE/wait.ms" >"$CASE/wait-added.ms"
  awk 'NR == FNR { at[$1] = $2; next } ($1 in at) { printf "%.3f\n", (at[$1] - $2) / 1e6 }' \
    "$CASE/probes.txt" "$CASE/wait.txt" >"$CASE/wait-sink.ms"
  awk 'NR == FNR { at[$1] = $2; next } ($1 + 10000 in at) { printf "%.3f\n", (at[$1 + 10000] - $2) / 1e6 }' \
    "$CASE/probes.txt" "$CASE/nowait.txt" >"$CASE/nowait-sink.ms"
  local probe_errors
  probe_errors=$(($(jget "$CASE/noop.json" errors) + $(jget "$CASE/wait.json" errors) +
    $(jget "$CASE/nowait.json" errors)))
  echo "   baseline call $(pct "$CASE/noop.ms") ms"
  echo "   waiting post adds $(pct "$CASE/wait-added.ms") ms;" \
    "request to sink, no wait $(pct "$CASE/nowait-sink.ms") ms"

  # (d) stop the host, (e) the database afterwards.
  local end_rss host_rc=0 stop_t0 stop_s
  end_rss=$(kb "$HOST_PID" VmRSS)
  stop_t0=$(date +%s.%N)
  kill -TERM "$HOST_PID"
  wait "$HOST_PID" || host_rc=$?
  stop_s=$(calc "$(date +%s.%N) - $stop_t0")
  HOST_PID=""
  local db_stop wal_stop mode outbox_out outbox_empty tokens_out invocations failures
  db_stop=$(fsize "$data/outbox.db")
  wal_stop=$(fsize "$data/outbox.db-wal")
  # The database header's read and write versions (bytes 18 and 19) are 2 in WAL mode.
  mode=$(od -An -tu1 -j18 -N2 "$data/outbox.db" | awk '{ print ($1 == 2 && $2 == 2) ? "wal" : "rollback journal" }')
  outbox_out=$("$HOST" outbox --config "$cfg" 2>&1 | head -n 5 | tr -d '"\134' | tr '\n' ' ')
  outbox_empty=$(grep -q "the outbox is empty" <<<"$outbox_out" && echo true || echo false)
  tokens_out=$("$HOST" tokens --config "$cfg" 2>&1 | head -n 1)
  invocations=$(sed -n 's/.*invocations=\([0-9]*\).*/\1/p' <<<"$tokens_out")
  failures=$(sed -n 's/.*failures=\([0-9]*\).*/\1/p' <<<"$tokens_out")
  stop "$SINK_PID"
  SINK_PID=""

  local log_problems
  log_problems=$(grep -E 'Z (warn|error) ' "$CASE/host.log" |
    grep -cvE 'SIGNATURE CHECKS ARE OFF|anyone who can reach' || true)
  if [ "$log_problems" -gt 0 ]; then
    echo "   host log: $log_problems warnings and errors; the first:"
    grep -E 'Z (warn|error) ' "$CASE/host.log" | grep -vE 'SIGNATURE CHECKS ARE OFF|anyone who can reach' |
      head -n 3 | cut -c1-300 | sed 's/^/     /'
  fi
  local F=$CASE/sink-final.json sent_total received_total
  sent_total=$(($(jget "$CASE/warm.json" accepted) + 1 + ACCEPTED_SUM +
    $(jget "$CASE/wait.json" accepted) + $(jget "$CASE/nowait.json" accepted)))
  received_total=$(jget "$F" channel_posts)
  local once=false
  [ "$sent_total" -eq "$received_total" ] && [ "${invocations:-0}" -eq "$received_total" ] && once=true
  local pass_rate pass_clean
  pass_rate=$(awk -v d="$del_ps" -v t="$TARGET" -v all="$DELIVERED_ALL" \
    'BEGIN { print (all == "true" && d >= t) ? "true" : "false" }')
  pass_clean=false
  if [ "$LOAD_FAILED" = false ] && [ "$once" = true ] && [ "$mode" = wal ] &&
    [ "$outbox_empty" = true ] && [ "$(jget "$F" bad_token)" -eq 0 ] &&
    [ "$(jget "$F" bad_body)" -eq 0 ] && [ "$(jget "$F" other_paths)" -eq 0 ] &&
    [ "$probe_errors" -eq 0 ] && [ "$host_rc" -eq 0 ]; then
    pass_clean=true
  fi
  echo "   database: $mode, $db_bursts bytes and WAL $wal_bursts bytes after the bursts," \
    "$db_after and $wal_after after the backlog, $db_stop and $wal_stop after the host stopped;" \
    "$outbox_out"
  echo "   each post exactly once: $once ($sent_total accepted, $received_total received," \
    "${invocations:-?} token invocations)"

  cat >"$WORK/case-$conc.json" <<JSON
{
    "post_concurrency": $conc,
    "posts_per_run": $N, "posts_per_call": $K, "calls_per_run": $CALLS, "clients": $CLIENTS,
    "runs": $RUNS, "median_run": $median,
    "accepted_per_s": $acc_ps,
    "delivered_per_s": $del_ps,
    "bursts": [
$runs_json
    ],
    "backlog": $(cat "$CASE/backlog.json"),
    "queue_delay_idle": {
      "probes": $PROBES, "gap_between_calls_ms": $PROBE_GAP_MS, "errors": $probe_errors,
      "baseline_call_ms": $(pct "$CASE/noop.ms"),
      "waiting_post_call_ms": $(pct "$CASE/wait.ms"),
      "waiting_post_added_ms": $(pct "$CASE/wait-added.ms"),
      "waiting_post_request_to_sink_ms": $(pct "$CASE/wait-sink.ms"),
      "queued_post_call_ms": $(pct "$CASE/nowait.ms"),
      "queued_post_request_to_sink_ms": $(pct "$CASE/nowait-sink.ms")
    },
    "host": {"idle_rss_kb": $idle_rss, "peak_rss_kb": $peak_rss, "peak_rss_mb": $(calc "$peak_rss / 1024"),
             "rss_after_kb": $end_rss, "stop_s": $stop_s, "exit_status": $host_rc,
             "log_warnings_and_errors": $log_problems},
    "sqlite": {"journal_mode": "$mode",
               "db_bytes_after_bursts": $db_bursts, "wal_bytes_after_bursts": $wal_bursts,
               "db_bytes_after_backlog": $db_after, "wal_bytes_after_backlog": $wal_after,
               "db_bytes_after_stop": $db_stop, "wal_bytes_after_stop": $wal_stop,
               "outbox_command": "$outbox_out", "outbox_empty": $outbox_empty},
    "exactly_once": {"posts_accepted_in_all": $sent_total, "posts_received_by_sink": $received_total,
                     "token_invocations": ${invocations:-null}, "token_failures": ${failures:-null},
                     "match": $once},
    "pass": {"delivered_per_s": $pass_rate, "clean": $pass_clean},
    "sink": $(cat "$F")
}
JSON
  PASS_RATE[$conc]=$pass_rate
  PASS_CLEAN[$conc]=$pass_clean
  DEL_PS[$conc]=$del_ps
  ACC_PS[$conc]=$acc_ps
}

declare -A PASS_RATE PASS_CLEAN DEL_PS ACC_PS
read -r -a CASES <<<"$CONCURRENCIES"
for conc in "${CASES[@]}"; do
  run_case "$conc"
done

# ---- the record --------------------------------------------------------------------

mkdir -p bench/results
stamp=$(date -u +%Y%m%d-%H%M%S)
out="bench/results/outbox-$stamp.json"
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
first=${CASES[0]}
cases_json=$(for conc in "${CASES[@]}"; do cat "$WORK/case-$conc.json"; echo ","; done | sed '$ d')
# The first case (the host's default post_concurrency unless CONCURRENCIES
# says otherwise) must reach the target; every case must be clean.
head_rate=${PASS_RATE[$first]}
all_rate=true
all_clean=true
for conc in "${CASES[@]}"; do
  [ "${PASS_RATE[$conc]}" = true ] || all_rate=false
  [ "${PASS_CLEAN[$conc]}" = true ] || all_clean=false
done
setup_cmd=${HOST_CMD[*]}
setup_cmd=${setup_cmd//"$CASE"/WORK\/CASE} # HOST_CMD and CASE are the last case's
cat >"$out.tmp" <<JSON
{
  "benchmark": "outbox: $RUNS bursts of $N channel posts queued by handlers (cliq.post_channel, wait = false) and delivered to a local sink, per post_concurrency; queue delay of single posts when idle",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "machine": {"cpu": "$cpu", "cores": $(nproc), "kernel": "$(uname -r)",
              "sqlite": "$(pkg-config --modversion sqlite3 2>/dev/null || echo unknown)"},
  "host": "$("$HOST" --version)",
  "source": {"commit": "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)",
             "uncommitted_host_changes": [$(git status --porcelain -- host lualib CMakeLists.txt 2>/dev/null |
                                             awk '{ printf "%s\"%s\"", (NR > 1 ? "," : ""), $2 }')]},
  "setup": "$setup_cmd, where WORK/CASE/config.lua sets tokens = { default = \"$TOKEN\" }, cliq_api = the sink, data_dir = a fresh temporary folder per case, post_rate_per_min = 0 (no pacing), http_timeout_ms = 120000 (so posts held by the stalled sink do not time out), outbox_max_queued and outbox_max_queued_per_token = 1000000 (the backlog queues N posts at once) and the case's post_concurrency. --no-verify: calls are unsigned (this measures the outbox, not signature checks; bench/run.sh measures signed calls). Load: bench/outbox-load.c, $CLIENTS keep-alive connections each sending calls of the command burst one after another (bench/scripts-outbox/commands/burst.lua posts options.count = $K messages with cliq.post_channel(\"bench\", \"message \" .. i, {wait = false}), each returning once durably queued) until $N are accepted; $RUNS such bursts per case on the same host, after a warm-up of $((CLIENTS * WARM_POSTS)) posts; the case's figures are the burst with the median delivered/s. Sink: bench/outbox-sink.c answers every request at once with 204 and checks path, zapikey and body. accepted/s = N / (last reply - first call); delivered/s = N / (N-th arrival at the sink - first call), both on CLOCK_MONOTONIC. Backlog: the sink stalls (it reads nothing, so the posts in flight wait unanswered) while the same load queues N more posts, then resumes; drain per_s = N / (last arrival - resume). cpu_s.anything_else = all CPU time the machine spent during the burst minus the host's, the sink's and the loader's (this script's polling, other users of the shared machine). Queue delay: after the bursts, with the outbox idle, $PROBES calls one at a time ($PROBE_GAP_MS ms apart) of bench/scripts-outbox/commands/noop.lua (baseline, no post), then probe.lua (one post, wait = true), then probe.lua with wait = false; waiting_post_added_ms = a waiting call's time minus the baseline's median; request_to_sink_ms = the probe's arrival at the sink minus the time its call was sent (an upper bound on the queue delay: it includes the call's parsing and the handler's start). Everything on this machine: the load tool and the sink share its cores with the host.",
  "n_per_run": $N,
  "target_delivered_per_s": $TARGET,
  "headline": {"post_concurrency": $first, "accepted_per_s": ${ACC_PS[$first]}, "delivered_per_s": ${DEL_PS[$first]},
               "runs": $RUNS, "statistic": "median run by delivered/s"},
  "cases": [
$cases_json
  ],
  "pass": {"delivered_per_s_headline": $head_rate, "delivered_per_s_every_case": $all_rate,
           "clean_every_case": $all_clean}
}
JSON
mv "$out.tmp" "$out"
cp "$out" bench/results/outbox-latest.json
echo "== recorded $out"
for conc in "${CASES[@]}"; do
  echo "   post_concurrency $conc: accepted ${ACC_PS[$conc]}/s, delivered ${DEL_PS[$conc]}/s" \
    "(median of $RUNS; target $TARGET), clean ${PASS_CLEAN[$conc]}"
done
if [ "$all_rate" != true ] && [ "$head_rate" = true ]; then
  echo "!! a case other than post_concurrency $first delivered under $TARGET/s (recorded)"
fi
if [ "$head_rate" != true ] || [ "$all_clean" != true ]; then
  echo "!! targets missed: delivered_per_s (post_concurrency $first)=$head_rate clean=$all_clean"
  exit 1
fi
