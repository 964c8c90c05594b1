#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/director-table/run.sh - build (Release, no sanitizers) and run the
# director forwarding table benchmark: build time, balance and rows moved
# for 16 ... 1,024 proxies. Pure CPU work, needs nothing else running.
# Uses ${DROVER_BENCH_BUILD} (set by scripts/bench.sh), else build/release.
# Instruction counts per fleet shape (stable under load): callgrind.sh here.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${DROVER_BENCH_BUILD:-build/release}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >"$log" 2>&1 || { cat "$log"; exit 1; }
fi
cmake --build "$build" --target bench_director-table -j "$(nproc)" >"$log" 2>&1 ||
    { cat "$log"; exit 1; }
exec "$build/bench/director-table/bench_director-table" "$@"
