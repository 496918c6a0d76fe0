#!/usr/bin/env bash
# bench/inflight.sh [N] [DELAY_MS]: the in-flight benchmark (issue 3). N
# handlers (default 10,000) are in flight at once, each waiting DELAY_MS
# (default 1000) on an outbound http.request to a local slow upstream, held by
# the host with 2 workers on this machine. Records held concurrency (the most
# requests the upstream saw pending at once), completion time against the
# ideal (DELAY plus the time it took to send the N requests), errors, latency,
# the host's peak RSS and CPU time into bench/results/inflight-*.json.
#
# Targets: zero errors, peak RSS under 256 MB, completion within 3 s of the
# ideal. The script exits 1 when one of them is missed (after recording);
# holding fewer than N at once is recorded (pass.held_all) and warned about.
#
# The host holds two sockets per waiting handler (the caller's and the
# upstream's), so N in flight needs a descriptor limit above 2N plus the
# host's own few dozen; the script warns when `ulimit -Hn` is below that.
#
# Pieces, all on this machine:
#   bench/inflight-upstream.c  answers any request 200 exactly DELAY_MS after it arrived
#   bench/inflight-sign.c      N distinct signed /wait calls whose arguments are its URL
#   bench/inflight-load.c      one connection per call, all sent at once, waits for all
#   bench/scripts-inflight/commands/wait.lua   the handler: http.request{url=..., timeout=30}
# The upstream is on 127.0.0.2, which scripts may reach only because the host
# runs with --http-allow 127.0.0.2 (loopback is refused otherwise).
# The tools are single files built with cc into build/bench-tools/; the host
# builds in its own tree, build/bench/.
#
# Before the host runs, the loader runs straight against the upstream once
# ("reference_without_host"): what the loader and upstream achieve alone here.
#
# Environment: RATE=R sends R requests/s instead of all at once;
# HOST_FLAGS="..." adds flags to `cliqhost serve` (recorded in the results).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
DELAY_MS=${2:-1000}
RATE=${RATE:-0}
HOST_FLAGS=${HOST_FLAGS:-}
WORKERS=2
LOAD_TIMEOUT_S=60
if ! [[ $N =~ ^[1-9][0-9]*$ && $DELAY_MS =~ ^[0-9]+$ && $RATE =~ ^[0-9]+$ ]]; then
  echo "usage: bench/inflight.sh [N] [DELAY_MS]   (env: RATE=req/s, HOST_FLAGS=...)" >&2
  exit 2
fi

# ---- what it needs ---------------------------------------------------------

PKGS=(build-essential cmake pkg-config liblua5.4-dev libmicrohttpd-dev libssl-dev libcjson-dev
      libcurl4-openssl-dev openssl)
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
cmake --build build/bench -j"$(nproc)" --target cliqhost cliqhost-bench-sign >/dev/null
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
build_tool inflight-upstream bench/inflight-upstream.c
build_tool inflight-load bench/inflight-load.c
build_tool inflight-sign bench/inflight-sign.c -lcrypto

WORK=$(mktemp -d /tmp/cliqhost-inflight-XXXXXX)
PORT_RANGE=/proc/sys/net/ipv4/ip_local_port_range
OLD_RANGE=""
HOST_PID=""
UPSTREAM_PID=""
SAMPLER_PID=""
cleanup() {
  local pid
  for pid in $SAMPLER_PID $HOST_PID $UPSTREAM_PID; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $SAMPLER_PID $HOST_PID $UPSTREAM_PID; do
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$OLD_RANGE" ]; then
    echo "$OLD_RANGE" >"$PORT_RANGE" || echo "!! could not restore $PORT_RANGE to $OLD_RANGE" >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the machine's limits ------------------------------------------------------

# The host holds 2 sockets per in-flight handler (the caller's and the
# upstream's), so it needs about 2N descriptors; the tools about N each.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard"
FD_LIMIT=$hard
FD_NEEDED=$((2 * N + 64))
# Each worker takes at most its share of what the limit allows; callers past
# it wait in the listen queue (and finish later) instead of failing.
MAX_CONNS=$(((FD_LIMIT - 64) / 2 / WORKERS))
[ "$MAX_CONNS" -gt 20000 ] && MAX_CONNS=20000
if [ "$FD_LIMIT" -lt "$FD_NEEDED" ]; then
  echo "!! the descriptor limit is $FD_LIMIT (ulimit -Hn, which needs CAP_SYS_RESOURCE to raise);" \
    "the host needs about $FD_NEEDED to hold $N in flight, so it cannot hold them all;" \
    "each worker takes at most $MAX_CONNS connections and the rest wait in the listen queue" >&2
fi

# Loopback needs an ephemeral port per connection: the loader's N and the
# host's N. Widen a narrow range for the run (root only) and put it back.
read -r lo hi <"$PORT_RANGE"
if [ $((hi - lo + 1)) -lt $((2 * N + 2000)) ]; then
  OLD_RANGE="$lo $hi"
  if echo "1024 65535" 2>/dev/null >"$PORT_RANGE"; then
    echo "== widened the ephemeral port range from $lo-$hi to 1024-65535 for this run"
  else
    OLD_RANGE=""
    echo "!! only $((hi - lo + 1)) ephemeral ports ($lo-$hi) and the range cannot be widened" >&2
  fi
fi

# ---- helpers ---------------------------------------------------------------------

# jget FILE KEY: a number from the flat JSON objects the tools print.
jget() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }
# calc EXPR: floating-point arithmetic.
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# tcpext NAME: a TcpExt counter from /proc/net/netstat (e.g. ListenOverflows).
tcpext() {
  awk -v k="$1" '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) col[$i] = i; h = 1 }
                              else { print $col[k] + 0 } }' /proc/net/netstat
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

# upstream_stats: asks the upstream for its statistics (SIGUSR1, which also
# starts its counters afresh) and prints the line it writes.
upstream_stats() {
  local before
  before=$(wc -l <"$WORK/upstream.out")
  kill -USR1 "$UPSTREAM_PID"
  for _ in $(seq 100); do
    [ "$(wc -l <"$WORK/upstream.out")" -gt "$before" ] && break
    sleep 0.02
  done
  tail -n 1 "$WORK/upstream.out"
}

# sample_host PID OUT: until PID exits, keeps the most descriptors it had open
# in OUT (sampled every 0.2 s with shell builtins, so the sampler costs little).
sample_host() {
  local pid=$1 out=$2 max=0 fds
  shopt -s nullglob
  while [ -d "/proc/$pid/fd" ]; do
    fds=("/proc/$pid/fd"/*)
    if [ ${#fds[@]} -gt "$max" ]; then
      max=${#fds[@]}
      echo "$max" >"$out"
    fi
    sleep 0.2
  done
}

# ---- the run -----------------------------------------------------------------------

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/key.pem" 2>/dev/null
openssl pkey -in "$WORK/key.pem" -pubout -out "$WORK/key.pub"

"$TOOLS/inflight-upstream" --listen 127.0.0.2:0 --delay-ms "$DELAY_MS" >"$WORK/upstream.out" \
  2>"$WORK/upstream.err" &
UPSTREAM_PID=$!
UP_PORT=""
for _ in $(seq 100); do
  UP_PORT=$(sed -n 's/^listening on [^:]*:\([0-9]*\).*/\1/p' "$WORK/upstream.out")
  [ -n "$UP_PORT" ] && break
  sleep 0.05
done
if [ -z "$UP_PORT" ]; then
  echo "!! the upstream did not start:" >&2
  cat "$WORK/upstream.err" >&2
  exit 1
fi
URL="http://127.0.0.2:$UP_PORT/slow"
echo "== upstream on $URL answers after $DELAY_MS ms; signing $N calls"
"$TOOLS/inflight-sign" "$WORK/key.pem" "$N" "$URL" "$WORK/requests.txt"

LOAD_ARGS=(--requests "$WORK/requests.txt" -n "$N" --timeout "$LOAD_TIMEOUT_S" --rate "$RATE")

echo "== reference: the loader straight to the upstream, no host"
"$TOOLS/inflight-load" --connect "127.0.0.2:$UP_PORT" "${LOAD_ARGS[@]}" --expect '"ok":true' \
  >"$WORK/ref-load.json" 2>"$WORK/ref-load.err"
upstream_stats >"$WORK/ref-upstream.json"
echo "   $(cat "$WORK/ref-load.json")"

echo "== the host: $WORKERS workers, $N handlers waiting ${DELAY_MS} ms each"
# Each waiting handler holds about 5 KB of Lua heap and, counted against
# the same cap, 16 KB for its transfer (VM_TRANSFER_COST): some 5,000
# waiting on one worker need about 110 MiB, more than the default 64 MiB
# max_memory_bytes, which then stops handlers for memory. An operator
# expecting this many raises it, as here.
HOST_CMD=(build/bench/cliqhost serve --scripts bench/scripts-inflight --listen 127.0.0.1:0
          --workers "$WORKERS" --key "$WORK/key.pub" --deadline 20000 --max-connections "$MAX_CONNS"
          --max-connections-per-ip 0 --log-level warn --http-allow 127.0.0.2
          --max-memory-bytes $((128 * 1024 * 1024)))
# shellcheck disable=SC2206 # HOST_FLAGS is split into words on purpose
HOST_CMD+=($HOST_FLAGS)
"${HOST_CMD[@]}" 2>"$WORK/host.log" &
HOST_PID=$!
HOST_PORT=""
for _ in $(seq 200); do
  if ! kill -0 "$HOST_PID" 2>/dev/null; then
    echo "!! the host exited at start:" >&2
    cat "$WORK/host.log" >&2
    HOST_PID=""
    exit 1
  fi
  read -r count port < <(listen_ports "$HOST_PID"; echo "0 0") || true
  if [ "$count" -ge "$WORKERS" ]; then
    HOST_PORT=$port
    break
  fi
  sleep 0.05
done
if [ -z "$HOST_PORT" ]; then
  echo "!! the host did not listen within 10 s:" >&2
  cat "$WORK/host.log" >&2
  exit 1
fi
sleep 0.5
idle_rss=$(kb "$HOST_PID" VmRSS)
sample_host "$HOST_PID" "$WORK/host-fds" &
SAMPLER_PID=$!
overflows0=$(tcpext ListenOverflows)
t0=$(cpu_ticks "$HOST_PID")
"$TOOLS/inflight-load" --connect "127.0.0.1:$HOST_PORT" "${LOAD_ARGS[@]}" --expect "upstream 200" \
  >"$WORK/load.json" 2>"$WORK/load.err"
t1=$(cpu_ticks "$HOST_PID")
overflows1=$(tcpext ListenOverflows)
peak_rss=$(kb "$HOST_PID" VmHWM)
end_rss=$(kb "$HOST_PID" VmRSS)
upstream_stats >"$WORK/upstream.json"
kill -TERM "$HOST_PID"
host_rc=0
wait "$HOST_PID" || host_rc=$?
HOST_PID=""
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""
echo "   $(cat "$WORK/load.json")"
if [ -s "$WORK/load.err" ]; then
  echo "   loader said:"
  sed -n 's/^/     /; 1,10p' "$WORK/load.err"
fi
if grep -qE 'Z (warn|error) ' "$WORK/host.log"; then
  echo "   host log: $(grep -cE 'Z (warn|error) ' "$WORK/host.log") warnings and errors; the first:"
  grep -m 3 -E 'Z (warn|error) ' "$WORK/host.log" | cut -c1-300 | sed 's/^/     /'
fi

# ---- the record --------------------------------------------------------------------

L="$WORK/load.json"
send_s=$(jget "$L" send_s)
completion_s=$(jget "$L" completion_s)
errors=$(jget "$L" errors)
held=$(jget "$WORK/upstream.json" max_pending)
ideal_s=$(calc "$DELAY_MS / 1000 + $send_s")
over_s=$(calc "$completion_s - $ideal_s")
clk=$(getconf CLK_TCK)
cpu_s=$(calc "($t1 - $t0) / $clk")
peak_mb=$(calc "$peak_rss / 1024")
max_fds=$(cat "$WORK/host-fds" 2>/dev/null || echo 0)
log_problems=$(grep -cE 'Z (warn|error) ' "$WORK/host.log" || true)
pass_errors=$([ "$errors" -eq 0 ] && echo true || echo false)
pass_rss=$([ "$peak_rss" -lt $((256 * 1024)) ] && echo true || echo false)
pass_time=$(awk -v o="$over_s" 'BEGIN { print (o <= 3 ? "true" : "false") }')
pass_held=$([ "${held:-0}" -ge "$N" ] && echo true || echo false)

mkdir -p bench/results
stamp=$(date -u +%Y%m%d-%H%M%S)
out="bench/results/inflight-$stamp.json"
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
rate_text=$([ "$RATE" -eq 0 ] && echo "all at once" || echo "at $RATE/s")
cat >"$out" <<JSON
{
  "benchmark": "in-flight: $N handlers each waiting $DELAY_MS ms on an outbound http.request",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "machine": {"cpu": "$cpu", "cores": $(nproc), "kernel": "$(uname -r)", "fd_limit": $FD_LIMIT},
  "host": "$(build/bench/cliqhost --version)",
  "setup": "${HOST_CMD[*]//$WORK/WORK}; handler bench/scripts-inflight/commands/wait.lua calls http.request{url=<upstream>, timeout=30}; upstream bench/inflight-upstream.c on 127.0.0.2 answers 200 exactly $DELAY_MS ms after each request; loader bench/inflight-load.c opens one connection per distinct signed ~1.2 KB /wait call and sends them $rate_text; everything on this machine",
  "n": $N,
  "upstream_delay_ms": $DELAY_MS,
  "held_concurrency": ${held:-0},
  "completion_s": $completion_s,
  "send_s": $send_s,
  "ideal_s": $ideal_s,
  "over_ideal_s": $over_s,
  "errors": $errors,
  "latency_ms": {"p50": $(jget "$L" p50_ms), "p99": $(jget "$L" p99_ms), "max": $(jget "$L" max_ms)},
  "host_peak_rss_kb": $peak_rss,
  "host_peak_rss_mb": $peak_mb,
  "host_idle_rss_kb": $idle_rss,
  "host_rss_after_kb": $end_rss,
  "host_cpu_s": $cpu_s,
  "host_max_fds_sampled": $max_fds,
  "host_log_warnings_and_errors": $log_problems,
  "host_exit_status": $host_rc,
  "listen_overflows": $((overflows1 - overflows0)),
  "targets": {"errors": 0, "peak_rss_mb_below": 256, "completion_within_s_of_ideal": 3},
  "pass": {"errors": $pass_errors, "peak_rss": $pass_rss, "completion": $pass_time, "held_all": $pass_held},
  "loader": $(cat "$L"),
  "upstream": $(cat "$WORK/upstream.json"),
  "reference_without_host": {"loader": $(cat "$WORK/ref-load.json"), "upstream": $(cat "$WORK/ref-upstream.json")}
}
JSON
cp "$out" bench/results/inflight-latest.json
echo "== held $held of $N; completion ${completion_s} s (ideal ${ideal_s} s, over by ${over_s} s);" \
  "errors $errors; host peak RSS ${peak_mb} MB, CPU ${cpu_s} s"
echo "== recorded $out"
if [ "$pass_held" != true ]; then
  echo "!! the host held at most ${held:-0} of the $N requests at once"
fi
if [ "$pass_errors$pass_rss$pass_time" != truetruetrue ]; then
  echo "!! targets missed: errors=$pass_errors peak_rss=$pass_rss completion=$pass_time"
  exit 1
fi
