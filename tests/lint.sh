#!/usr/bin/env bash
# Mechanical checks on the C sources: formatted by the checked-in
# .clang-format, and no libc calls that cannot be bounded (use snprintf,
# memcpy with a checked length, strtol with an end pointer).
set -u
cd "$(dirname "$0")/.."
status=0
files=$(ls host/*/*.c host/*/*.h tests/unit/*.c tests/unit/*.h tests/fuzz/*.c tests/fuzz/*.h bench/sign.c bench/floor.c bench/floor-lua.c bench/floor-lua.h)
if ! clang-format --dry-run --Werror $files; then
  echo "lint: run clang-format -i on the files above"
  status=1
fi
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|atoll)[[:space:]]*\('
if grep -nE "$banned" host/*/*.c host/*/*.h tests/fuzz/*.c tests/fuzz/*.h; then
  echo "lint: banned calls above (unbounded or unchecked)"
  status=1
fi
[ $status -eq 0 ] && echo "lint: ok"
exit $status
