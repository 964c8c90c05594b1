#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/watcher/run.sh [changes] - runner for `scripts/bench.sh watcher`.
# bench/watcher/run.sh paced [rate [seconds]] - the paced (open-loop) mode.
# Builds drover-watcher (Release) in ${DROVER_BENCH_BUILD:-build/release},
# then bench_watcher.py starts a Consul dev agent, HAProxy 2.6 (-W -S) and
# the watcher on loopback, measures, and cleans up (also on failure).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build drover-watcher
exec python3 "$root/bench/watcher/bench_watcher.py" "$build/watcher/drover-watcher" \
    "$root/tests/lib/consul-dev.sh" "$root/haproxy-templates" "${@:-1000}"
