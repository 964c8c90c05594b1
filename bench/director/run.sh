#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/director/run.sh [repeat] [rounds]
# Builds bench_director (Release, no sanitizers; scripts/bench.sh passes its build dir) in
# ${DROVER_BENCH_BUILD:-build/release} and runs it as root. It moves itself
# into a private network namespace and pins itself to the last CPU. Then
# jit_paths.py counts the instructions each packet path runs (stable where
# the timings are not); skipped with a note without python3 or objdump.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build bench_director
"$build/bench/director/bench_director" "${1:-2000000}" "${2:-7}"
if command -v python3 >/dev/null && command -v objdump >/dev/null; then
    python3 bench/director/jit_paths.py "$build/xdp-lb/director_bpf.bpf.o"
else
    echo "# instructions per path not counted: jit_paths.py needs python3 and objdump" >&2
fi
