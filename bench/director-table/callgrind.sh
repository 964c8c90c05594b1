#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/director-table/callgrind.sh [SHAPE...] - instruction counts of
# director_table_build() per fleet shape of the worst-case sweep, under
# valgrind --tool=callgrind (one build per shape, only the build counted,
# the helper threads that draw lists included: their start function is
# collected too). Threads: ${DROVER_TABLE_THREADS:-2} (the count on a
# 2-CPU director; 1 = no helper thread).
# Times on a shared, loaded machine vary 2-4x from run to run; instruction
# counts do not (same binary, same input: same count), so they compare
# commits and shapes where times cannot. Ends with
#   BENCH director_table_worst_instructions_m   (millions, slowest shape)
#   BENCH director_table_typical_instructions_m (shape 0: 1,000 equal proxies)
# Uses ${DROVER_BENCH_BUILD} (set by scripts/bench.sh), else build/release.
# Needs valgrind (scripts/bootstrap.sh installs it). About 10-20 s per shape.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build bench_director-table
bin=$build/bench/director-table/bench_director-table
threads=${DROVER_TABLE_THREADS:-2}
command -v valgrind >/dev/null || { echo "callgrind.sh: needs valgrind" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

shapes=("$@")
if [ ${#shapes[@]} -eq 0 ]; then
    k=0
    while "$bin" shape "$k" >/dev/null 2>&1; do
        shapes+=("$k")
        k=$((k + 1))
    done
fi
echo "method: valgrind --tool=callgrind --toggle-collect=director_table_build"
echo "  --toggle-collect=draw_helper_main on $bin shape K $threads (one build of"
echo "  shape K of the worst-case sweep with $threads drawing threads, release build);"
echo "  Ir = instructions executed inside director_table_build() and its helper"
echo "  threads, summed over threads, in millions"
printf '%10s  %s\n' "Ir_M" "shape"
worst=0 worst_name="" typical=0
for k in "${shapes[@]}"; do
    name=$("$bin" shape "$k" | sed 's/^shape [0-9]*: //')
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$k" \
        --toggle-collect=director_table_build --toggle-collect=draw_helper_main \
        "$bin" shape "$k" "$threads" >/dev/null 2>"$tmp/log.$k" ||
        { cat "$tmp/log.$k" >&2; exit 1; }
    ir=$(sed -n 's/^summary: //p' "$tmp/cg.$k") # all threads
    m=$(awk -v ir="$ir" 'BEGIN { printf "%.1f", ir / 1e6 }')
    printf '%10s  %s\n' "$m" "$name"
    [ "$k" = 0 ] && typical=$m
    if awk -v a="$m" -v b="$worst" 'BEGIN { exit !(a > b) }'; then
        worst=$m worst_name=$name
    fi
done
echo "worst: $worst_name"
echo "BENCH director_table_worst_instructions_m $worst"
echo "BENCH director_table_typical_instructions_m $typical"
