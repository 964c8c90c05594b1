#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/exporter/run.sh [services] [nodes] [events]
# Runner for `scripts/bench.sh exporter`: builds drover-exporter (Release)
# in ${DROVER_BENCH_BUILD:-build/release} if needed, then bench.py starts
# a Consul dev agent and the Kubernetes API fixture on free loopback
# ports, measures, and stops everything again, also on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${DROVER_BENCH_BUILD:-build/release}
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target drover-exporter -j "$(nproc)" >/dev/null
exec python3 bench/exporter/bench.py "$build/exporter/drover-exporter" "$@"
