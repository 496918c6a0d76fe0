#!/usr/bin/env bash
# bench/journal.sh [SECONDS]: what the console's journal costs signed calls
# when nobody watches (issue 16, point 7). The host (2 workers, the bench's
# scripts and 10,000 signed calls, as bench/run.sh) runs with the journal
# on (journal_calls = 200, the default) and off (0), taking turns for ROUNDS
# rounds (default 3) of SECONDS each; prints each round's requests/s and
# the medians' ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-8}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
BUILD=build/bench
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target cliqhost cliqhost-bench-sign >/dev/null
WORK=$(mktemp -d)
HOST_PID=
cleanup() {
  [ -n "$HOST_PID" ] && kill "$HOST_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/key.pem" 2>/dev/null
openssl pkey -in "$WORK/key.pem" -pubout -out "$WORK/key.pub"
"$BUILD/cliqhost-bench-sign" "$WORK/key.pem" 10000 "$WORK/requests.txt"

# round CALLS: one timed run with journal_calls = CALLS; prints requests/s.
round() {
  "$BUILD/cliqhost" serve --scripts bench/scripts --listen 127.0.0.1:0 --workers 2 \
    --replay-memory 0 --key "$WORK/key.pub" --journal-calls "$1" 2>"$WORK/host.log" &
  HOST_PID=$!
  local port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$WORK/host.log")
    [ -n "$port" ] && break
    sleep 0.1
  done
  wrk -t1 -c"$CONNS" -d2s -s bench/replay.lua "http://127.0.0.1:$port/" -- "$WORK/requests.txt" >/dev/null
  wrk -t1 -c"$CONNS" -d"${DURATION}s" -s bench/replay.lua "http://127.0.0.1:$port/" \
    -- "$WORK/requests.txt" | awk '/Requests\/sec/ {print $2}'
  kill -TERM "$HOST_PID"
  wait "$HOST_PID" || true
  HOST_PID=
}

on=() off=()
for i in $(seq "$ROUNDS"); do
  off+=("$(round 0)")
  on+=("$(round 200)")
  echo "round $i: journal off ${off[-1]} req/s, on ${on[-1]} req/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
m_off=$(median "${off[@]}")
m_on=$(median "${on[@]}")
awk -v a="$m_on" -v b="$m_off" 'BEGIN {printf "median: on %s, off %s req/s; on/off %.3f\n", a, b, a / b}'
