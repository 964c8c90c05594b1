#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/fanout/run.sh [bench_fanout args...] - runner for
# `scripts/bench.sh fanout`: builds bench_fanout (Release) in
# ${DROVER_BENCH_BUILD:-build/release}, then fanout.sh starts a 3-server
# Consul cluster on loopback addresses, runs it (default: 200 watchers,
# 100 changes, 20 unrelated changes) and stops the cluster, also on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${DROVER_BENCH_BUILD:-build/release}
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target bench_fanout -j "$(nproc)" >/dev/null
[ $# -gt 0 ] || set -- --watchers 200 --changes 100 --unrelated 20
exec "$root/bench/fanout/fanout.sh" "$build/bench/fanout/bench_fanout" "$@"
