#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/frontdoor/run.sh: the front door's figures (issue 18), measured by
# the end-to-end scenario of tests/e2e/frontdoor/run.sh (root, network
# namespaces, real BIRD 2, real XDP): two directors behind a BIRD router
# with ECMP under long-lived connections and an open-loop load of 50 new
# connections/s.
#   frontdoor_withdraw_ms           XDP detached on director 1 -> its
#                                   nexthop gone from the router's route
#                                   (round 200 ms, fall 2)
#   frontdoor_drain_failed          failed requests while director 1 is
#                                   drained (graceful shutdown, withdraw)
#   frontdoor_crash_failed          failed requests after kill -9 of the
#                                   watcher with XDP still attached
#   frontdoor_broken_connections    long-lived connections broken over the
#                                   whole scenario (drain, detach, crash,
#                                   link cut, returns)
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_build drover-watcher drover-director droverctl e2e_frontdoor_deps
log=$(mktemp)
out=$(mktemp)
trap 'rm -f "$log" "$out"' EXIT
xdp_pass=$(find "$build/tests/e2e/frontdoor" -name '*xdp_pass*.bpf.o' | head -n 1)
echo "method: tests/e2e/frontdoor/run.sh scenario; 2 directors (XDP) + BIRD 2 router (ECMP, L4 hash),"
echo "        8 long-lived connections (a line every 50 ms) + 50 new connections/s; $(nproc) CPUs"
FRONTDOOR_BENCH=$out tests/e2e/frontdoor/run.sh "$build/watcher/drover-watcher" \
    "$build/xdp-lb/drover-director" "$xdp_pass" tests/lib/consul-dev.sh "$build/ctl/droverctl" >"$log" 2>&1 ||
    { tail -n 60 "$log"; exit 1; }
grep -E '^[0-9]:' "$log"
cat "$out"
