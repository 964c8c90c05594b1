#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/exporter/callgrind.sh [services=5000] [nodes=500] - instruction
# counts of the exporter's own CPU work in a converge, which times on a
# shared, loaded machine cannot compare (same binary, same input: same
# count). pages.py saves the Kubernetes API fixture's list pages (limit
# 500, as the daemon asks), then bench_export_build runs once under
# valgrind --tool=callgrind, counting only
#   store: each page pruned, parsed and slimmed into the kube_stores
#          (what kube_client does with a page)
#   build: export_build_desired + kv_layout_diff against an empty Consul
#          + kv_ops_to_txn (the first round of sync)
# Ends with BENCH exporter_store_instructions_m and
# BENCH exporter_build_instructions_m (millions). About 30 s of CPU (1-3 min
# wall on the loaded 2-CPU VM).
# Uses ${DROVER_BENCH_BUILD} (set by scripts/bench.sh), else build/release.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build bench_export_build
bin=$build/bench/exporter/bench_export_build
command -v valgrind >/dev/null || { echo "callgrind.sh: needs valgrind" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$root/bench/exporter/pages.py" "$tmp/pages" "${1:-5000}" "${2:-500}" >/dev/null
valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" --toggle-collect=bench_store_phase \
    --toggle-collect=bench_build_phase "$bin" "$tmp/pages" once >/dev/null 2>"$tmp/log" ||
    { cat "$tmp/log" >&2; exit 1; }
# inclusive cost of each phase function, in millions (awk reads to the end:
# an early exit would be a SIGPIPE for callgrind_annotate under pipefail)
count() {
    callgrind_annotate --inclusive=yes "$tmp/cg" 2>/dev/null |
        awk -v fn=":$1 " '!done && index($0, fn) { gsub(",", "", $1); printf "%.1f", $1 / 1e6
                                                   done = 1 }'
}
store=$(count bench_store_phase)
build_ir=$(count bench_build_phase)
echo "method: valgrind --tool=callgrind --toggle-collect=bench_{store,build}_phase on"
echo "  bench_export_build over the fixture's list pages (${1:-5000} Services, ${2:-500} Nodes,"
echo "  limit 500), release build; Ir = instructions executed, in millions"
echo "BENCH exporter_store_instructions_m $store"
echo "BENCH exporter_build_instructions_m $build_ir"
