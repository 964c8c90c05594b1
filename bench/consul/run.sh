#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/consul/run.sh [changes] [txns]
# Runner for `scripts/bench.sh consul`: builds bench_consul (Release) in
# ${DROVER_BENCH_BUILD:-build/release} if needed, starts a Consul dev agent
# on free loopback ports (tests/lib/consul-dev.sh), runs the benchmark
# against it and stops the agent again, also on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${DROVER_BENCH_BUILD:-build/release}
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target bench_consul -j "$(nproc)" >/dev/null
work=$(mktemp -d)
state=$work/consul
trap 'tests/lib/consul-dev.sh stop "$state" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
tests/lib/consul-dev.sh start "$state" >/dev/null
echo "setup: $(consul version | head -1), consul agent -dev (in-memory Raft) at $(cat "$state/addr"), $(nproc) CPUs"
"$build/bench/consul/bench_consul" "$(cat "$state/addr")" "${1:-1000}" "${2:-200}"
