#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/director/run.sh [repeat] [rounds]
# Builds bench_director (Release, no sanitizers; scripts/bench.sh passes its build dir) in
# ${DROVER_BENCH_BUILD:-build/release} and runs it as root. It moves itself
# into a private network namespace and pins itself to the last CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${DROVER_BENCH_BUILD:-build/release}
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target bench_director -j "$(nproc)" >/dev/null
exec "$build/bench/director/bench_director" "${1:-2000000}" "${2:-7}"
