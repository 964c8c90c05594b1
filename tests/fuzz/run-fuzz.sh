#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run-fuzz.sh TARGET SEED_DIR WORK_DIR SECONDS
# Runs a libFuzzer target for a bounded time on a scratch copy of its seed
# corpus (the checked-in seeds are never modified). Exits non-zero on any
# crash, leak or timeout that libFuzzer reports.
set -euo pipefail
target=$1 seeds=$2 work=$3 secs=$4
rm -rf "$work" && mkdir -p "$work/corpus" "$work/artifacts"
if [ -d "$seeds" ]; then cp -r "$seeds"/. "$work/corpus/"; fi
exec "$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus"
