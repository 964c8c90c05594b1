#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/agent-checker/run.sh [seconds-per-size]
# Builds the daemon and the load generator (Release, no sanitizers) in
# ${DROVER_BENCH_BUILD:-build/bench} and runs the benchmark. The daemon is
# pinned to CPU 0 and the generator to CPU 1 (sched_setaffinity, as
# taskset -c would).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${DROVER_BENCH_BUILD:-build/bench}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >"$log" 2>&1 || { cat "$log"; exit 1; }
fi
cmake --build "$build" --target drover-agent-checker bench_agent-checker -j "$(nproc)" \
    >"$log" 2>&1 || { cat "$log"; exit 1; }
"$build/bench/agent-checker/bench_agent-checker" "$build/agent-checker/drover-agent-checker" "${1:-3}"
