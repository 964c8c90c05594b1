#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# scripts/bench.sh faults: the fault tests of tests/faults/ run on the
# release build, each printing its BENCH lines (issue 13 and 14):
#   faults_haproxy_worker_failed   failed requests when the HAProxy worker
#                                  of one proxy host is killed under load
#   faults_haproxy_master_failed   the same for the HAProxy master
#   faults_haproxy_recovery_s      serving again after the kill (slower one)
#   faults_haproxy_failed_share_pct  failed share of the 20 s fault run
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DROVER_BENCH_BUILD:-$root/build/release}
cmake --build "$build" --target drover-watcher drover-agent-checker -j "$(nproc)" >/dev/null
python3 "$root/tests/faults/haproxy_supervise.py" "$build/watcher/drover-watcher" \
    "$root/tests/lib/consul-dev.sh" "$root/haproxy-templates" \
    "$build/agent-checker/drover-agent-checker" | grep '^BENCH '
