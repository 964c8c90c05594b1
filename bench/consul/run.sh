#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/consul/run.sh [changes] [txns]
# Runner for `scripts/bench.sh consul`: builds bench_consul (Release) in
# ${DROVER_BENCH_BUILD:-build/release} if needed, starts a Consul dev agent
# on free loopback ports (tests/lib/consul-dev.sh), runs the benchmark
# against it and stops the agent again, also on failure.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build bench_consul
work=$(mktemp -d)
state=$work/consul
trap 'tests/lib/consul-dev.sh stop "$state" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
tests/lib/consul-dev.sh start "$state" >/dev/null
echo "setup: $(consul version | head -1), consul agent -dev (in-memory Raft) at $(cat "$state/addr"), $(nproc) CPUs"
"$build/bench/consul/bench_consul" "$(cat "$state/addr")" "${1:-1000}" "${2:-200}"
