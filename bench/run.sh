#!/usr/bin/env bash
# bench/run.sh [SECONDS]: the core load test. Signs 10,000 distinct Cliq
# calls, starts the host (2 workers) on bench/scripts, replays the calls with
# wrk on the same machine, and records requests/s, p50/p99 latency, errors,
# idle and peak RSS and CPU per request into bench/results/.
#
# In the same run it measures, for context: one RSA-2048 verification
# (`openssl speed`), the host with signature checks off (--no-verify), which
# shows what the checks cost on this machine, the floor (bench/floor.c: the
# least a server must do for a signed call, no Lua, no log), the floor with
# Lua's share of a call added (bench/floor-lua.c: with the host's own code,
# the body's parse, the body as Lua tables, the request object, the same
# handler and its reply as JSON; no sandbox, no limits, no log), and a
# Node.js cluster server doing the same work (bench/node/server.js) under
# the same load, with the ratios between them. The host and the floors take
# turns, ROUNDS (default 3) rounds of: the host's signed calls, its signed
# calls with the console's journal off (journal_calls = 0: what recording
# each call costs when nobody watches), the floor's and the floor with Lua's
# signed calls, then the same three with --no-verify; the medians give the
# ratios, and each case's recorded round is its round with the median CPU
# per request. bench/floor-check.py first checks that each floor answers the
# calls as the host does.
#
# BASELINE=REV bench/run.sh compares against an older commit in the same
# run: REV is built from a clean checkout (build/bench-baseline/), and each
# round measures it too, signed and with --no-verify, on the same signed
# calls; the medians, their ratio to this tree and to the floor are recorded
# beside the rest.
#
# A run is not valid (recorded as such, then exit 1) when a measured case
# got anything but 2xx answers or had socket errors.
#
# The host is built into its own tree, build/bench/, so a run never races
# with a developer's build in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${1:-15}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
N_REQUESTS=10000
BUILD=build/bench
BASE_BUILD=build/bench-baseline

# command:package pairs; apt-get runs only for what is missing.
for dep in wrk:wrk openssl:openssl cmake:cmake bc:bc pgrep:procps node:nodejs; do
  if ! command -v "${dep%%:*}" >/dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${dep#*:}"
  fi
done
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target cliqhost cliqhost-bench-sign \
  cliqhost-bench-floor cliqhost-bench-floor-lua >/dev/null
if [ -n "${BASELINE:-}" ]; then
  rm -rf "$BASE_BUILD"
  mkdir -p "$BASE_BUILD/src"
  git archive --format=tar "$BASELINE" | tar -x -C "$BASE_BUILD/src"
  cmake -S "$BASE_BUILD/src" -B "$BASE_BUILD/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBUILD_TESTING=OFF >/dev/null
  cmake --build "$BASE_BUILD/build" -j"$(nproc)" --target cliqhost >/dev/null
fi

WORK=$(mktemp -d /tmp/cliqhost-bench-XXXXXX)
HOST_PID=
FLOOR_PID=
NODE_PID=
NODE_KIDS=()
# Stops whatever server is still up (also when a step fails) and removes the
# scratch directory.
cleanup() {
  if [ -n "$HOST_PID" ]; then
    kill "$HOST_PID" 2>/dev/null || true
  fi
  if [ -n "$FLOOR_PID" ]; then
    kill "$FLOOR_PID" 2>/dev/null || true
  fi
  if [ -n "$NODE_PID" ]; then
    local kids
    mapfile -t kids < <(pgrep -P "$NODE_PID"; printf '%s\n' "${NODE_KIDS[@]}")
    kill "${kids[@]}" "$NODE_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/key.pem" 2>/dev/null
openssl pkey -in "$WORK/key.pem" -pubout -out "$WORK/key.pub"
"$BUILD/cliqhost-bench-sign" "$WORK/key.pem" "$N_REQUESTS" "$WORK/requests.txt"

clk=$(getconf CLK_TCK)
# Figures summed over the given processes: utime + stime in ticks, a
# /proc/PID/status field in kB, private (anonymous) memory in kB.
cpu_ticks() {
  local p t=0
  for p; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo $t
}
kb() {
  local k=$1 p t=0
  shift
  for p; do t=$((t + $(awk -v k="$k" '$1 == k":" {print $2}' "/proc/$p/status"))); done
  echo $t
}
private_kb() {
  local p t=0
  for p; do t=$((t + $(awk '/^Anonymous:/ {print $2}' "/proc/$p/smaps_rollup"))); done
  echo $t
}
# wrk latency ("812.00us", "3.74ms", "1.02s") in milliseconds.
to_ms() {
  awk -v s="$1" 'BEGIN {
    u = s; sub(/^[0-9.]+/, "", u)
    f = u == "us" ? 0.001 : u == "ms" ? 1 : u == "s" ? 1000 : u == "m" ? 60000 : -1
    if (f < 0) { print "cannot read latency " s > "/dev/stderr"; exit 1 }
    printf "%.3f", (s + 0) * f
  }'
}
declare -A RPS P99_MS CPU_US
# Why the run is not valid, if it is not: a measured case that got anything
# but 2xx answers measured something else (a refusal costs far less than a
# handler), so its figures must not be quoted.
INVALID=()
ROUND=
# measure NAME PORT PID: loads the server listening on PORT whose main process
# is PID (warm-up, then the timed run) and writes its figures as a JSON
# object to $WORK/NAME.json. The server is left running.
measure() {
  local name=$1 port=$2 pid=$3
  sleep 0.5
  # The server's processes: PID and its children (Node's cluster workers; the
  # host has none, its workers are threads).
  local pids idle_rss idle_anon
  mapfile -t pids < <(echo "$pid"; pgrep -P "$pid" || true)
  idle_rss=$(kb VmRSS "${pids[@]}")
  idle_anon=$(private_kb "${pids[@]}")
  wrk -t1 -c"$CONNS" -d2s -s bench/replay.lua "http://127.0.0.1:$port/" -- "$WORK/requests.txt" >/dev/null
  local t0 t1
  t0=$(cpu_ticks "${pids[@]}")
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s bench/replay.lua "http://127.0.0.1:$port/" \
    -- "$WORK/requests.txt" >"$WORK/wrk-$name.txt"
  t1=$(cpu_ticks "${pids[@]}")
  local peak
  peak=$(kb VmHWM "${pids[@]}")
  local w="$WORK/wrk-$name.txt"
  local total rps p50 p99 non2xx sockerr cpu
  total=$(awk '/requests in/ {print $1}' "$w")
  rps=$(awk '/Requests\/sec/ {print $2}' "$w")
  p50=$(awk '$1 == "50%" {print $2}' "$w")
  p99=$(awk '$1 == "99%" {print $2}' "$w")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$w")
  sockerr=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$w")
  cpu=$(printf '%.1f' "$(echo "($t1 - $t0) * 1000000 / $clk / $total" | bc -l)")
  if [ "${non2xx:-0}" != 0 ] || [ "${sockerr:-0}" != 0 ]; then
    INVALID+=("$name${ROUND:+ in round $ROUND}: ${non2xx:-0} non-2xx answers, ${sockerr:-0} socket errors")
  fi
  RPS[$name]=$rps
  P99_MS[$name]=$(to_ms "$p99")
  CPU_US[$name]=$cpu
  {
    printf '{"case":"%s","processes":%d,"requests":%s,"requests_per_s":%s,' \
      "$name" "${#pids[@]}" "$total" "$rps"
    printf '"p50":"%s","p99":"%s","p50_ms":%s,"p99_ms":%s,' \
      "$p50" "$p99" "$(to_ms "$p50")" "${P99_MS[$name]}"
    printf '"non_2xx":%s,"socket_errors":%s,"cpu_us_per_request":%s,' \
      "${non2xx:-0}" "${sockerr:-0}" "$cpu"
    printf '"idle_rss_kb":%s,"idle_private_kb":%s,"peak_rss_kb":%s}' \
      "$idle_rss" "$idle_anon" "$peak"
  } >"$WORK/$name.json"
}

# run_host NAME HOST-FLAGS...: starts the host, measures it, stops it.
# HOST_BIN (default: this tree's) chooses the binary.
run_host() {
  local name=$1
  shift
  # wrk sends the 10,000 signed calls over and over, which the host would
  # refuse as replays after the first pass: --replay-memory 0 keeps the
  # timestamp check and skips the repeat check, which Cliq's real traffic
  # never trips. The calls are stamped when they are signed, at the start:
  # with the default 300 s window the rounds after the fifth minute would
  # measure the host refusing stale calls, so the window is a day.
  "${HOST_BIN:-$BUILD/cliqhost}" serve --scripts bench/scripts --listen 127.0.0.1:0 --workers 2 \
    --replay-memory 0 --replay-window 86400 "$@" \
    2>"$WORK/host-$name.log" &
  HOST_PID=$!
  measure "$name" "$(wait_port "$WORK/host-$name.log")" "$HOST_PID"
  kill -TERM "$HOST_PID"
  wait "$HOST_PID" || true
  HOST_PID=
}

# run_floor NAME [--no-verify]: starts the floor (bench/floor.c) on a free
# port, checks it answers as the host does, measures it, stops it. With
# FLOOR_LUA=1, the floor with Lua's share (bench/floor-lua.c) instead.
run_floor() {
  local name=$1
  shift
  local bin=("$BUILD/cliqhost-bench-floor" "$@" 0 "$WORK/key.pub")
  [ -n "${FLOOR_LUA:-}" ] && bin=("$BUILD/cliqhost-bench-floor-lua" "$@" 0 "$WORK/key.pub" \
    bench/scripts/commands/bench.lua lualib)
  "${bin[@]}" >"$WORK/floor-$name.log" 2>&1 &
  FLOOR_PID=$!
  local port
  port=$(wait_port "$WORK/floor-$name.log")
  python3 bench/floor-check.py "$port" "$WORK/requests.txt" "$@" >/dev/null
  measure "$name" "$port" "$FLOOR_PID"
  kill -TERM "$FLOOR_PID"
  wait "$FLOOR_PID" || true
  FLOOR_PID=
}

# run_node: starts bench/node/server.js (a cluster of 2 workers) on a free
# port, measures it, stops the primary and its workers.
run_node() {
  node bench/node/server.js 0 "$WORK/key.pub" 2 >"$WORK/node.log" 2>&1 &
  NODE_PID=$!
  local port
  port=$(wait_port "$WORK/node.log")
  mapfile -t NODE_KIDS < <(pgrep -P "$NODE_PID" || true)
  measure node "$port" "$NODE_PID"
  kill -TERM "$NODE_PID"
  wait "$NODE_PID" || true
  kill "${NODE_KIDS[@]}" 2>/dev/null || true
  NODE_PID=
  NODE_KIDS=()
}

echo "== openssl speed rsa2048 (one core)"
verify_per_s=$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048/ {print $7}')
echo "   $verify_per_s verifies/s"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
json_list() { (IFS=,; echo "$*"); }

# The cases each round measures, in turn: NAME, what runs, its flags.
cases=()
[ -n "${BASELINE:-}" ] && cases+=("base:base:--key $WORK/key.pub")
# journal_off: the console's journal turned off (journal_calls = 0), for
# what recording every call costs when nobody watches (issue 16); it runs
# right after the signed calls, so each round's pair meets the same machine.
cases+=("signed:host:--key $WORK/key.pub" "journal_off:host:--key $WORK/key.pub --journal-calls 0"
  "floor:floor:" "floor_lua:floor_lua:" "unsigned:host:--no-verify"
  "floor_unsigned:floor:--no-verify" "floor_lua_unsigned:floor_lua:--no-verify")
[ -n "${BASELINE:-}" ] && cases+=("base_unsigned:base:--no-verify")
declare -A R_RPS R_CPU
echo "== ${DURATION}s each, wrk -t1 -c$CONNS, $ROUNDS rounds taking turns:" \
  "cliqhost signed, the floor, the floor with Lua, all three with --no-verify," \
  "the journal off${BASELINE:+, and $BASELINE}"
for i in $(seq "$ROUNDS"); do
  ROUND=$i
  line="   round $i:"
  for c in "${cases[@]}"; do
    IFS=: read -r name what flags <<<"$c"
    # shellcheck disable=SC2086 # flags are words
    case $what in
      host) run_host "$name" $flags ;;
      base) HOST_BIN="$BASE_BUILD/build/cliqhost" run_host "$name" $flags ;;
      floor) run_floor "$name" $flags ;;
      floor_lua) FLOOR_LUA=1 run_floor "$name" $flags ;;
    esac
    cp "$WORK/$name.json" "$WORK/$name-$i.json"
    R_RPS[$name]+="${R_RPS[$name]:+ }${RPS[$name]}"
    R_CPU[$name]+="${R_CPU[$name]:+ }${CPU_US[$name]}"
    line+=" $name ${RPS[$name]}/s ${CPU_US[$name]} us;"
  done
  echo "$line"
done
declare -A M_RPS M_CPU
for c in "${cases[@]}"; do
  name=${c%%:*}
  # shellcheck disable=SC2086 # lists of numbers
  M_RPS[$name]=$(median ${R_RPS[$name]}) M_CPU[$name]=$(median ${R_CPU[$name]})
done
# json_number NAME: the number member NAME of the JSON object on stdin (one
# of measure's, all on one line).
json_number() { awk -F"\"$1\":" '{split($2, a, ","); print a[1]}'; }
# median_round NAME: the JSON of NAME's round with the median CPU per request.
median_round() {
  local i
  for i in $(seq "$ROUNDS"); do
    if [ "$(json_number cpu_us_per_request <"$WORK/$1-$i.json")" = "${M_CPU[$1]}" ]; then
      cat "$WORK/$1-$i.json"
      return
    fi
  done
}
# paired_ratio ARRAY A B: the median over the rounds of A's figure in ARRAY
# (R_RPS or R_CPU) over B's in the same round (less moved by the machine's
# drift than the medians' ratio).
paired_ratio() {
  local -n lists=$1
  local a b r=()
  read -ra a <<<"${lists[$2]}"
  read -ra b <<<"${lists[$3]}"
  for i in "${!a[@]}"; do r+=("$(ratio "${a[$i]}" "${b[$i]}")"); done
  median "${r[@]}"
}
signed=$(median_round signed)
unsigned=$(median_round unsigned)
floor_signed=$(median_round floor)
floor_unsigned=$(median_round floor_unsigned)
floor_ratio=$(ratio "${M_CPU[signed]}" "${M_CPU[floor]}")
floor_ratio_nv=$(ratio "${M_CPU[unsigned]}" "${M_CPU[floor_unsigned]}")
# Each CPU ratio also as the median of each round's pair.
floor_paired=$(paired_ratio R_CPU signed floor)
floor_paired_nv=$(paired_ratio R_CPU unsigned floor_unsigned)
echo "   medians: cliqhost ${M_RPS[signed]}/s ${M_CPU[signed]} us, floor ${M_RPS[floor]}/s" \
  "${M_CPU[floor]} us: x$floor_ratio the floor's CPU per signed call (each round's pair:" \
  "median x$floor_paired)"
echo "   --no-verify: cliqhost ${M_RPS[unsigned]}/s ${M_CPU[unsigned]} us, floor" \
  "${M_RPS[floor_unsigned]}/s ${M_CPU[floor_unsigned]} us: x$floor_ratio_nv (pairs: x$floor_paired_nv)"
floor_lua_signed=$(median_round floor_lua)
floor_lua_unsigned=$(median_round floor_lua_unsigned)
lua_ratio=$(ratio "${M_CPU[floor_lua]}" "${M_CPU[floor]}")
lua_ratio_nv=$(ratio "${M_CPU[floor_lua_unsigned]}" "${M_CPU[floor_unsigned]}")
lua_paired=$(paired_ratio R_CPU floor_lua floor)
lua_paired_nv=$(paired_ratio R_CPU floor_lua_unsigned floor_unsigned)
echo "   the floor with Lua's share: ${M_RPS[floor_lua]}/s ${M_CPU[floor_lua]} us: x$lua_ratio" \
  "the floor's CPU per signed call (pairs: x$lua_paired); --no-verify" \
  "${M_CPU[floor_lua_unsigned]} us: x$lua_ratio_nv (pairs: x$lua_paired_nv)"
host_lua_ratio=$(ratio "${M_CPU[signed]}" "${M_CPU[floor_lua]}")
host_lua_ratio_nv=$(ratio "${M_CPU[unsigned]}" "${M_CPU[floor_lua_unsigned]}")
host_lua_paired=$(paired_ratio R_CPU signed floor_lua)
host_lua_paired_nv=$(paired_ratio R_CPU unsigned floor_lua_unsigned)
echo "   cliqhost / the floor with Lua: x$host_lua_ratio signed (pairs: x$host_lua_paired)," \
  "x$host_lua_ratio_nv --no-verify (pairs: x$host_lua_paired_nv)"
journal_off=$(median_round journal_off)
journal_rps=$(ratio "${M_RPS[signed]}" "${M_RPS[journal_off]}")
journal_cpu=$(ratio "${M_CPU[signed]}" "${M_CPU[journal_off]}")
journal_paired=$(paired_ratio R_RPS signed journal_off)
echo "   the journal on (default) / off: x$journal_rps the signed calls/s (each round's pair:" \
  "median x$journal_paired), x$journal_cpu the CPU per call"
# lists_json ARRAY: ARRAY's space-separated lists (R_RPS, R_CPU), one per
# case, as a JSON object of arrays.
lists_json() {
  local -n lists=$1
  local c sep=
  printf '{'
  for c in "${cases[@]}"; do
    # shellcheck disable=SC2086 # a list of numbers
    printf '%s"%s":[%s]' "$sep" "${c%%:*}" "$(json_list ${lists[${c%%:*}]})"
    sep=,
  done
  printf '}'
}
rounds=$(printf '{"rounds":%s,"requests_per_s":%s,"cpu_us_per_request":%s}' "$ROUNDS" \
  "$(lists_json R_RPS)" "$(lists_json R_CPU)")

echo "== the same signed calls to Node.js $(node --version) (bench/node/server.js, 2 workers)"
ROUND=
run_node
nodejs=$(cat "$WORK/node.json")
echo "   $nodejs"

baseline='null'
if [ -n "${BASELINE:-}" ]; then
  base_rev=$(git rev-parse --short "$BASELINE")
  bm=${M_RPS[base]} nm=${M_RPS[signed]} bc_=${M_CPU[base]} nc_=${M_CPU[signed]}
  echo "   $base_rev: medians $bm/s ($bc_ us CPU, x$(ratio "$bc_" "${M_CPU[floor]}") the floor)," \
    "this tree $nm/s ($nc_ us CPU): x$(ratio "$nm" "$bm") the requests/s;" \
    "--no-verify ${M_CPU[base_unsigned]} us, this tree ${M_CPU[unsigned]} us"
  # shellcheck disable=SC2086 # lists of numbers
  baseline=$(printf '{"rev":"%s","rounds":%s,"requests_per_s":[%s],"cpu_us_per_request":[%s],"this_tree_requests_per_s":[%s],"this_tree_cpu_us_per_request":[%s],"median_requests_per_s":%s,"this_tree_median_requests_per_s":%s,"median_cpu_us":%s,"this_tree_median_cpu_us":%s,"this_tree_over_baseline":%s,"no_verify_cpu_us_per_request":[%s],"median_cpu_us_no_verify":%s,"cpu_over_floor":%s,"cpu_over_floor_no_verify":%s}' \
    "$base_rev" "$ROUNDS" "$(json_list ${R_RPS[base]})" "$(json_list ${R_CPU[base]})" \
    "$(json_list ${R_RPS[signed]})" "$(json_list ${R_CPU[signed]})" "$bm" "$nm" "$bc_" "$nc_" \
    "$(ratio "$nm" "$bm")" "$(json_list ${R_CPU[base_unsigned]})" "${M_CPU[base_unsigned]}" \
    "$(ratio "$bc_" "${M_CPU[floor]}")" "$(ratio "${M_CPU[base_unsigned]}" "${M_CPU[floor_unsigned]}")")
fi
signed_p99_ms=$(json_number p99_ms <<<"$signed")
rps_ratio=$(ratio "${M_RPS[signed]}" "${RPS[node]}")
p99_ratio=$(ratio "$signed_p99_ms" "${P99_MS[node]}")
verify_ratio=$(ratio "${M_CPU[signed]}" "$(echo "1000000 / $verify_per_s" | bc -l)")
echo "== cliqhost (signed) / node: requests/s x$rps_ratio, p99 x$p99_ratio"
echo "   host CPU per signed request = $verify_ratio x one RSA-2048 verify"

mkdir -p bench/results
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
out="bench/results/core-$(date -u +%Y%m%d-%H%M%S).json"
cat >"$out" <<JSON
{
  "benchmark": "core: signed Cliq calls to a Lua handler",
  "date": "$date",
  "machine": {"cpu": "$cpu", "cores": $(nproc), "kernel": "$(uname -r)"},
  "host": "$("$BUILD/cliqhost" --version)",
  "node_version": "$(node --version)",
  "setup": "2 workers, --replay-memory 0 --replay-window 86400 (the calls are stamped when signed, before the first round); $ROUNDS rounds taking turns (cliqhost, the floor and the floor with Lua, each signed and with --no-verify, cliqhost signed with journal_calls = 0${BASELINE:+, the baseline}), each: wrk -t1 -c$CONNS -d${DURATION}s on the same machine; $N_REQUESTS distinct signed ~1.2 KB command bodies; handler bench/scripts/commands/bench.lua; node: bench/node/server.js, a cluster of 2 worker processes, figures summed over the primary and workers; floor: bench/floor.c, 2 threads, no Lua, no log; floor_lua: the same with Lua's share of a call, done with the host's own code (bench/floor-lua.c: request_decode, the body as Lua tables, the request object, the handler, its reply as JSON; no sandbox, limits, log, journal, metrics or libmicrohttpd); signed, no_verify_reference, floor and floor_lua: each case's round with the median CPU per request",
  "openssl_rsa2048_verifies_per_s_one_core": $verify_per_s,
  "signed": $signed,
  "no_verify_reference": $unsigned,
  "floor": {"signed": $floor_signed, "no_verify": $floor_unsigned},
  "floor_lua": {"signed": $floor_lua_signed, "no_verify": $floor_lua_unsigned},
  "journal_off": $journal_off,
  "rounds": $rounds,
  "node": $nodejs,
  "baseline": $baseline,
  "ratios": {
    "requests_per_s_cliqhost_over_node": $rps_ratio,
    "p99_cliqhost_over_node": $p99_ratio,
    "host_cpu_per_request_over_one_verify": $verify_ratio,
    "cpu_per_signed_call_cliqhost_over_floor": $floor_ratio,
    "cpu_per_call_no_verify_cliqhost_over_floor": $floor_ratio_nv,
    "cpu_per_signed_call_floor_lua_over_floor": $lua_ratio,
    "cpu_per_call_no_verify_floor_lua_over_floor": $lua_ratio_nv,
    "cpu_per_signed_call_cliqhost_over_floor_lua": $host_lua_ratio,
    "cpu_per_call_no_verify_cliqhost_over_floor_lua": $host_lua_ratio_nv,
    "paired_medians": {
      "cpu_per_signed_call_cliqhost_over_floor": $floor_paired,
      "cpu_per_call_no_verify_cliqhost_over_floor": $floor_paired_nv,
      "cpu_per_signed_call_floor_lua_over_floor": $lua_paired,
      "cpu_per_call_no_verify_floor_lua_over_floor": $lua_paired_nv,
      "cpu_per_signed_call_cliqhost_over_floor_lua": $host_lua_paired,
      "cpu_per_call_no_verify_cliqhost_over_floor_lua": $host_lua_paired_nv
    },
    "requests_per_s_cliqhost_over_floor": $(ratio "${M_RPS[signed]}" "${M_RPS[floor]}"),
    "signed_requests_per_s_journal_on_over_off": $journal_rps,
    "signed_requests_per_s_journal_on_over_off_paired_median": $journal_paired,
    "cpu_per_signed_call_journal_on_over_off": $journal_cpu
  },
  "valid": $([ ${#INVALID[@]} = 0 ] && echo true || echo false),
  "invalid_because": [$(json_strings "${INVALID[@]}")]
}
JSON
python3 -m json.tool "$out" >/dev/null
cp "$out" bench/results/core-latest.json
echo "== recorded $out"
if [ ${#INVALID[@]} != 0 ]; then
  printf 'NOT VALID: %s\n' "${INVALID[@]}" >&2
  exit 1
fi
