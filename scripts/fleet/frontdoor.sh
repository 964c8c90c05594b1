#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The front door demo (scripts/demo.sh --frontdoor; docs/frontdoor.md): two
# directors, each with drover-director (XDP), drover-watcher in director
# mode and BIRD 2, behind a router namespace running BIRD 2 with ECMP
# (merge paths on, L4 multipath hash), two proxies, a Consul dev agent and
# a client with long-lived connections plus 50 new connections/s. It shows
# the router's two nexthops, then director 1 drained (droverctl host drain),
# losing its XDP program, its watcher killed, its link cut - and after each
# the connections still working and the figures (failed requests, broken
# connections). The same scenario is the CTest e2e test e2e_frontdoor.
#
#   scripts/fleet/frontdoor.sh BUILD-DIR
set -euo pipefail
build=$(cd "${1:?usage: frontdoor.sh BUILD-DIR}" && pwd)
cd "$(dirname "$0")/../.."
xdp_pass=$(find "$build/tests/e2e/frontdoor" -name '*xdp_pass*.bpf.o' | head -n 1)
[ -n "$xdp_pass" ] || { echo "frontdoor demo: build e2e_frontdoor_deps first" >&2; exit 1; }
exec tests/e2e/frontdoor/run.sh "$build/watcher/drover-watcher" "$build/xdp-lb/drover-director" \
    "$xdp_pass" tests/lib/consul-dev.sh "$build/ctl/droverctl"
