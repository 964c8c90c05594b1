#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/cert_swap/run.sh [swaps] - runner for `scripts/bench.sh cert_swap`.
# Builds drover-watcher (Release) in ${DROVER_BENCH_BUILD:-build/release},
# then bench_cert_swap.py starts a Consul dev agent, HAProxy 2.6 (-W -S)
# and the watcher on loopback, measures, and cleans up (also on failure).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build drover-watcher
exec python3 "$root/bench/cert_swap/bench_cert_swap.py" "$build/watcher/drover-watcher" \
    "$root/tests/lib/consul-dev.sh" "$root/haproxy-templates" "${1:-100}"
