#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/agent-checker/run.sh [seconds-per-size]
# Builds the daemon and the load generator (Release, no sanitizers) in
# ${DROVER_BENCH_BUILD:-build/release} (bench/lib.sh) and runs the benchmark. The daemon is
# pinned to CPU 0 and the generator to CPU 1 (sched_setaffinity, as
# taskset -c would).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build drover-agent-checker bench_agent-checker
"$build/bench/agent-checker/bench_agent-checker" "$build/agent-checker/drover-agent-checker" "${1:-3}"
