# SPDX-License-Identifier: Apache-2.0
# bench/lib.sh - sourced by the bench/*/run.sh runners (scripts/bench.sh NAME
# runs them). One way for all of them to get their programs built:
#
#   . "$(dirname "$0")/../lib.sh"      # also cds to the repository root
#   bench_build TARGET...              # sets $build; exits 1 with the log
#
# $build is ${DROVER_BENCH_BUILD} (scripts/bench.sh sets it to
# build/release), else build/release; a build dir that is not configured
# yet is configured with the release preset's settings (Release, no
# sanitizers) first. The build's output is shown only when it fails.
# shellcheck shell=bash

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
build=${DROVER_BENCH_BUILD:-build/release}

bench_build() {
    local log rc=0
    log=$(mktemp)
    if [ ! -f "$build/CMakeCache.txt" ]; then
        cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >"$log" 2>&1 || rc=$?
    fi
    [ "$rc" -ne 0 ] || cmake --build "$build" --target "$@" -j "$(nproc)" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$log" >&2
        rm -f "$log"
        echo "bench: building $* in $build failed" >&2
        exit 1
    fi
    rm -f "$log"
}
