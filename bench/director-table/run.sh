#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/director-table/run.sh - build (Release, no sanitizers) and run the
# director forwarding table benchmark: build time, balance and rows moved
# for 16 ... 1,024 proxies. Pure CPU work, needs nothing else running.
# Uses ${DROVER_BENCH_BUILD} (set by scripts/bench.sh), else build/release.
# Instruction counts per fleet shape (stable under load): callgrind.sh here.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build bench_director-table
exec "$build/bench/director-table/bench_director-table" "$@"
