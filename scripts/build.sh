#!/usr/bin/env bash
# Configures and builds gemma4.cpp into build/ (the CLI lands at build/gemma4).
# Usage: scripts/build.sh [--sanitize]   (--sanitize: ASan + UBSan build in build-asan/)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
args=(-DCMAKE_BUILD_TYPE=Release)
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  # -O1 -g1: sanitizer reports keep file:line, and the build (everything compiled a second time in
  # CI) is about half as long as -O2 -g.
  args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1"
        -DGEMMA4_SANITIZE=ON -DGEMMA4_BUILD_BENCH=OFF)
fi
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
ninja -C "$dir"
