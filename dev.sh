#!/usr/bin/env bash
# The README's two commands, on a fresh Debian 12 machine as root:
#
#   ./dev.sh serve [cliqhost serve flags]   install what is missing, build, and serve the
#                                           example scripts on 127.0.0.1:8080
#   ./dev.sh test                           install what is missing, build, and run every
#                                           test, then again under ASan and UBSan, then
#                                           fuzz each libFuzzer target for 20 s
#
# Both are safe to run again: packages are installed only when missing and
# builds are incremental.
#
# serve keeps its state apart from any other host on the machine: its data_dir
# (the outbox) is build/dev/data unless you give --data-dir or --config. It
# trusts the development key build/dev/cliq-dev.pub (what `cliqhost invoke`
# signs with) unless you give --key or --no-verify, or a --config that sets
# `keys` (flags replace a config's list, so adding the development key would
# drop the config's keys).
set -euo pipefail
cd "$(dirname "$0")"

# tzdata: the zones schedules are read in (scripts/schedules/standup.lua is Paris time).
BUILD_PKGS=(build-essential cmake pkg-config liblua5.4-dev libmicrohttpd-dev libssl-dev
            libcjson-dev libcurl4-openssl-dev libsqlite3-dev libhiredis-dev ca-certificates openssl
            tzdata)
# chromium: the console's real-browser tests (tests/browser/), run headless; nodejs: the
# node tests of its renderer (tests/browser/test_render.js).
TEST_PKGS=(python3 clang-format lua5.4 lua-check clang libclang-rt-14-dev file lintian redis-server
           chromium nodejs)

# Installs the Debian packages that are not installed yet.
need_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  echo "== installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
}

# configure DIR [cmake options]: (re)configures; warnings are errors here.
configure() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLIQHOST_WERROR=ON "$@" >/dev/null
}

# build DIR [cmake options]: configures, then builds everything incrementally.
build() {
  configure "$@"
  cmake --build "$1" -j"$(nproc)"
}

# A development key pair, made once and kept in build/dev/: `serve` trusts its
# public half, and `cliqhost invoke` signs calls with the private half.
dev_key() {
  if [ ! -f build/dev/cliq-dev.pem ]; then
    build/cliqhost keygen build/dev
  fi
}

# config_file ARGS...: the file given with --config FILE or --config=FILE, or "".
config_file() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --config) echo "${2:-}"; return ;;
      --config=*) echo "${1#--config=}"; return ;;
    esac
    shift
  done
}

case "${1:-}" in
  serve)
    shift
    # CLIQHOST_DEV_DRY_RUN=1 prints the command instead of building and running it.
    dry_run=${CLIQHOST_DEV_DRY_RUN:-}
    if [ -z "$dry_run" ]; then
      need_packages "${BUILD_PKGS[@]}"
      # Only the binary: serving needs no test tools and builds no tests.
      configure build
      cmake --build build -j"$(nproc)" --target cliqhost
    fi
    args=("$@")
    config=$(config_file "$@")
    config_keys=
    if [ -n "$config" ] && grep -Eq '^[[:space:]]*keys[[:space:]]*=' "$config" 2>/dev/null; then
      config_keys=1
    fi
    if [[ " $* " != *" --key"* && " $* " != *" --no-verify "* && -z "$config_keys" ]]; then
      [ -n "$dry_run" ] || dev_key
      args+=(--key build/dev/cliq-dev.pub)
    fi
    if [[ " $* " != *" --data-dir"* && -z "$config" ]]; then
      args+=(--data-dir build/dev/data)
    fi
    # Replies go only to Cliq's own hosts unless allowed: `cliqhost invoke`
    # catches them on 127.0.0.1.
    if [[ " $* " != *" --response-url-allow"* ]]; then
      args+=(--response-url-allow 127.0.0.1)
    fi
    if [ -n "$dry_run" ]; then
      echo build/cliqhost serve --scripts scripts "${args[@]}"
      exit 0
    fi
    exec build/cliqhost serve --scripts scripts "${args[@]}"
    ;;
  test)
    need_packages "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
    status=0
    echo "== build and test (build/)"
    build build
    (cd build && ctest --output-on-failure) || status=1
    echo "== build and test under AddressSanitizer and UndefinedBehaviorSanitizer (build/asan/)"
    build build/asan -DCLIQHOST_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    (cd build/asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure) || status=1
    echo "== fuzz each target for 20 s (build/fuzz/, clang and libFuzzer)"
    tests/fuzz/run.sh 20 || status=1
    exit $status
    ;;
  *)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
