#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run-rotation.sh BUILD_DIR COUNT [ROTATION]
# The longer fuzz stage of CI: runs COUNT of the fuzz targets of the fuzz
# build in BUILD_DIR for DROVER_FUZZ_LONG_SECONDS each (their CTest tests
# NAME_long, label fuzz_long), two at a time. Which COUNT targets is chosen
# by ROTATION (default: the day number since the epoch), walking the
# sorted target list COUNT at a time, so every target gets its long run
# every ceil(N / COUNT) days. Set DROVER_FUZZ_ROTATION to replay the
# choice of a given day. Crashes are kept as run-fuzz.sh says.
set -euo pipefail
build=$1 count=$2
rotation=${3:-${DROVER_FUZZ_ROTATION:-$(( $(date -u +%s) / 86400 ))}}
mapfile -t all < <(ctest --test-dir "$build" -N -L '^fuzz_long$' |
                   sed -n 's/^ *Test *#[0-9]*: \(.*_long\)$/\1/p' | sort)
n=${#all[@]}
if [ "$n" -eq 0 ]; then
    echo "run-rotation: no fuzz_long tests in $build (configure with the fuzz preset)" >&2
    exit 1
fi
[ "$count" -gt "$n" ] && count=$n
pick=()
for ((i = 0; i < count; i++)); do
    pick+=("${all[$(( (rotation * count + i) % n ))]}")
done
regex="^($(IFS='|'; echo "${pick[*]}"))\$"
echo "run-rotation: rotation $rotation, $count of $n targets: ${pick[*]}"
exec ctest --test-dir "$build" -R "$regex" -j 2 --output-on-failure
