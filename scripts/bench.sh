#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/bench.sh NAME [args...] - build and run the benchmark bench/NAME.
#
# Convention (every benchmark plugs in the same way):
#   - bench/NAME/ is a folder with a CMakeLists.txt (added by bench/CMakeLists
#     automatically). If it defines a CMake target named bench_NAME
#     (e.g. bench_consul, bench_director-table), this script builds it.
#   - If bench/NAME/run.sh exists, it is the runner (it sources bench/lib.sh
#     and builds what it needs with `bench_build TARGET...`): it starts whatever the
#     benchmark needs (a Consul dev agent, HAProxy, a netns...), runs it,
#     cleans up, and receives the extra args. Otherwise the script runs the
#     binary build/release/bench/NAME/bench_NAME with the extra args.
#   - Builds use the release preset (`cmake --preset release`, build dir
#     build/release, no sanitizers). Runners get it as DROVER_BENCH_BUILD
#     (and DROVER_BUILD_DIR) and must use that dir rather than their own.
#   - Output: first the method (what is measured, how, on what setup), then
#     one line per figure: `BENCH <figure_name> <value>`; units are part of
#     the figure name (_ms, _ops_per_s, _pps, ...). Exit status non-zero
#     when the benchmark could not run. Benchmarks are never tests.
#
#   scripts/bench.sh            lists the benchmarks
#   scripts/bench.sh consul     KV put -> blocking-query wake-up, txn ops/s
#   scripts/bench.sh fanout     one KV change -> 200 watchers on a 3-server Consul (docs/scaling.md)
#   scripts/bench.sh cert_swap  renewed certificate file -> served by HAProxy (no reload)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

list() {
    for d in bench/*/; do
        [ -f "$d/CMakeLists.txt" ] || [ -f "$d/run.sh" ] || continue
        basename "$d"
    done
}

if [ $# -lt 1 ]; then
    echo "usage: scripts/bench.sh NAME [args...]; benchmarks:" >&2
    list | sed 's/^/  /' >&2
    exit 2
fi
name=$1
shift
dir=bench/$name
if [ ! -d "$dir" ]; then
    echo "bench.sh: no benchmark $name (no folder $dir); available: $(list | tr '\n' ' ')" >&2
    exit 2
fi

build=build/release
export DROVER_BENCH_BUILD=$root/$build DROVER_BUILD_DIR=$root/$build
echo "==> configure (release preset) and build" >&2
cmake --preset release >/dev/null
target=bench_$name
if cmake --build "$build" --target help 2>/dev/null | grep -qx "\.\.\. $target"; then
    cmake --build "$build" --target "$target" -j "$(nproc)" >/dev/null
fi

echo "==> bench $name" >&2
if [ -x "$dir/run.sh" ]; then
    exec "$dir/run.sh" "$@"
elif [ -x "$build/$dir/$target" ]; then
    exec "$build/$dir/$target" "$@"
else
    echo "bench.sh: $dir has neither run.sh nor a target $target" >&2
    exit 2
fi
