#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build/fuzz/ and runs each one
# for a bounded time, one after the other:
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]    default 60 s each; all targets
#
# Installs what is missing first (Debian 12, as root or through sudo). Each
# target starts from its seed corpus (tests/fuzz/corpus/<target>/, copied
# into build/fuzz/work/<target>/corpus/, which keeps what earlier runs found;
# the repository is not modified) and its regression inputs. Prints one line
# per target; exits 1 if any target crashed, broke an invariant, leaked, hung
# or ran out of memory, naming the input it saved. To reproduce one:
#
#   build/fuzz/tests/fuzz/fuzz_json build/fuzz/work/fuzz_json/crash-...
#
# then minimize it (add -minimize_crash=1 -runs=10000), and keep it in
# tests/fuzz/regressions/<target>/ so every `./dev.sh test` replays it.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_request fuzz_json fuzz_keys)

PKGS=(build-essential cmake pkg-config liblua5.4-dev libmicrohttpd-dev libssl-dev
      libcjson-dev libcurl4-openssl-dev libsqlite3-dev clang libclang-rt-14-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  echo "== installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
fi

echo "== build the fuzz targets (build/fuzz/, clang, libFuzzer, ASan, UBSan)"
CC=clang cmake -S . -B build/fuzz -DCLIQHOST_FUZZ=ON -DCLIQHOST_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/fuzz -j"$(nproc)" --target "${targets[@]}"

# Readable stacks when LLVM's symbolizer is there; addr2line otherwise.
for s in llvm-symbolizer llvm-symbolizer-14 /usr/lib/llvm-14/bin/llvm-symbolizer; do
  if command -v "$s" >/dev/null; then
    export ASAN_SYMBOLIZER_PATH=$(command -v "$s")
    break
  fi
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

status=0
for t in "${targets[@]}"; do
  work=build/fuzz/work/$t
  mkdir -p "$work/corpus"
  cp -p tests/fuzz/corpus/"$t"/* "$work/corpus/"
  if [ -d tests/fuzz/regressions/"$t" ]; then
    cp -p tests/fuzz/regressions/"$t"/* "$work/corpus/" 2>/dev/null || true
  fi
  dict=()
  [ -f tests/fuzz/"$t".dict ] && dict=(-dict=tests/fuzz/"$t".dict)
  log=$work/fuzz.log
  rc=0
  # One process at a time: the machine is shared. A handler's logged failure
  # is not a finding, so the targets' own stderr goes to the log only.
  build/fuzz/tests/fuzz/"$t" "$work/corpus" "${dict[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -artifact_prefix="$work/" -print_final_stats=1 >"$log" 2>&1 || rc=$?
  final=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  [ -z "$final" ] && final=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\).*/cov: \1 ft: \2/p' <<<"$final")
  if [ $rc -eq 0 ]; then
    printf '%-13s ok     %ss, %s runs, %s exec/s, %s, corpus %s files\n' "$t" "${took:-?}" \
      "${runs:-?}" "${speed:-?}" "${cov:-cov: ?}" "$(ls "$work/corpus" | wc -l)"
  else
    status=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    what=$(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|invariant broken' "$log" || true)
    printf '%-13s FAILED (exit %d) %s\n' "$t" "$rc" "${what:-see $log}"
    printf '              input: %s\n              log:   %s\n' "${artifact:-none saved}" "$log"
  fi
done
exit $status
