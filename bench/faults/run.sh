#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/faults/run.sh [TEST...] - runner for `scripts/bench.sh faults`.
# Runs the fault suite's scripts (tests/faults/faults_*.sh, or the named
# ones) on the release build: each brings the fleet up in network
# namespaces, puts load through the VIP (ports 80 and 8080, a new
# connection per request, 50 requests/s each in open loop: on a fixed
# schedule, so requests that hang during a fault are all counted) and applies its faults one
# at a time. Per fault it prints
#   BENCH faults_<fault>_failed N       failed requests from fault to recovery
#   BENCH faults_<fault>_recovery_s X   repair done -> fleet back at its baseline
# (HAProxy's servers on both proxies and the director's proxies), and
#   BENCH faults_refused_definition_apply_s X   KV change -> both HAProxys
# (node changes while a definition is refused by haproxy -c). Needs
# root. A fault over its budget makes the run exit non-zero.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build faults_deps
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/faults/faults_*.sh)
tests=("${tests[@]/haproxy_supervise/}") # the Python rig below
tests=(${tests[@]+"${tests[@]}"})
rc=0
for t in "${tests[@]}"; do
    [ -f "$t" ] || t=tests/faults/$t.sh
    args=()
    grep -q -- '--consul-cluster' "$t" && args=(--consul-cluster)
    echo "==> $(basename "$t" .sh)" >&2
    "$t" "$build" "${args[@]}" 2>"$build/$(basename "$t" .sh).log" | grep '^BENCH ' || {
        rc=1
        echo "bench faults: $t failed, see $build/$(basename "$t" .sh).log" >&2
    }
done
# HAProxy worker and master killed on a lone proxy host on loopback, no
# director (issue 14's rig): prints
#   BENCH faults_haproxy_onehost_worker_failed / _master_failed /
#   _recovery_s / _failed_share_pct
# (through the fleet's VIP: faults_process_death.sh above, BENCH
# faults_haproxy_worker_failed, faults_haproxy_recovery_s, ...)
bench_build drover-watcher drover-agent-checker
if [ $# -eq 0 ] || [[ " $* " == *" haproxy_supervise "* ]]; then
    echo "==> haproxy_supervise" >&2
    python3 tests/faults/haproxy_supervise.py "$build/watcher/drover-watcher" \
        tests/lib/consul-dev.sh haproxy-templates \
        "$build/agent-checker/drover-agent-checker" 2>"$build/haproxy_supervise.log" |
        grep '^BENCH ' || {
        rc=1
        echo "bench faults: haproxy_supervise failed, see $build/haproxy_supervise.log" >&2
    }
fi
exit $rc
