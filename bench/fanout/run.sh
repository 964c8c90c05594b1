#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/fanout/run.sh [bench_fanout args...] - runner for
# `scripts/bench.sh fanout`: builds bench_fanout (Release) in
# ${DROVER_BENCH_BUILD:-build/release}, then fanout.sh starts a 3-server
# Consul cluster on loopback addresses, runs it (default: 200 watchers,
# 100 changes, 20 unrelated changes) and stops the cluster, also on failure.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build bench_fanout
[ $# -gt 0 ] || set -- --watchers 200 --changes 100 --unrelated 20
exec "$root/bench/fanout/fanout.sh" "$build/bench/fanout/bench_fanout" "$@"
