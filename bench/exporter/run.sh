#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/exporter/run.sh [services] [nodes] [events]
# Runner for `scripts/bench.sh exporter`: builds drover-exporter (Release)
# in ${DROVER_BENCH_BUILD:-build/release} if needed, then bench.py starts
# a Consul dev agent and the Kubernetes API fixture on free loopback
# ports, measures, and stops everything again, also on failure; then
# callgrind.sh counts the exporter's own instructions (store and build).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build drover-exporter bench_export_build
python3 bench/exporter/bench.py "$build/exporter/drover-exporter" "$@"
# the exporter's own instructions per converge (stable under load)
if command -v valgrind >/dev/null; then
    DROVER_BENCH_BUILD=$build bench/exporter/callgrind.sh "${1:-5000}" "${2:-500}"
else
    echo "bench: valgrind missing, no instruction counts (scripts/bootstrap.sh installs it)"
fi
