#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run-fuzz.sh TARGET SEED_DIR WORK_DIR SECONDS
# Runs a libFuzzer target for a bounded time on a scratch copy of its seed
# corpus (the checked-in seeds are never modified). Exits non-zero on any
# crash, leak or timeout that libFuzzer reports.
#
# Every seed is replayed first, so an input checked in under SEED_DIR is a
# regression test. When the run fails, the input that failed is copied to
# $DROVER_FUZZ_CRASH_DIR (default: WORK_DIR/../fuzz-crashes) under the
# target's name, and the command that makes it a regression seed is
# printed: copy it into SEED_DIR and commit it with the fix
# (docs/architecture.md, "Fuzzing").
#
# A libFuzzer dictionary SEED_DIR.dict (beside the seed directory: the
# tokens the parser knows), if there is one, is passed as -dict=.
set -uo pipefail
target=$1 seeds=$2 work=$3 secs=$4
rm -rf "$work" && mkdir -p "$work/corpus" "$work/artifacts"
if [ -d "$seeds" ]; then cp -r "$seeds"/. "$work/corpus/"; fi
dict=()
if [ -f "$seeds.dict" ]; then dict=(-dict="$seeds.dict"); fi
"$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 "${dict[@]}" \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus"
rc=$?
if [ "$rc" -ne 0 ]; then
    keep=${DROVER_FUZZ_CRASH_DIR:-$(dirname "$work")/fuzz-crashes}/$(basename "$target")
    mkdir -p "$keep"
    for f in "$work"/artifacts/*; do
        [ -f "$f" ] || continue
        cp "$f" "$keep/"
        echo "run-fuzz: $(basename "$target") failed on $keep/$(basename "$f");" \
             "keep it as a regression seed: cp '$keep/$(basename "$f")' '$seeds/'" >&2
    done
fi
exit "$rc"
