#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's demo command: a whole drover fleet on this one machine, in
# network namespaces it creates, using only loopback and those namespaces.
# Installs what is missing (scripts/bootstrap.sh), builds drover (default
# preset), then runs scripts/fleet/scenario.sh --frontdoor - the same
# scenario the e2e test tests/e2e/fleet asserts:
#   Kubernetes API stand-in (3 nodes, 2 NodePort services, pods in node
#   namespaces), Consul dev agent, drover-exporter x2 (one leader), two proxy
#   hosts (drover-watcher running HAProxy master-worker, drover-agent-checker,
#   BPF decap), two director hosts (drover-director XDP + drover-watcher in
#   director mode + BIRD 2 announcing the VIP) behind a router running
#   BIRD 2 with ECMP, client;
#   requests through the VIP, droverctl drain, a proxy drained at the
#   director with a live connection (second chance), a node added with no
#   HAProxy reload, droverctl status, director stats, and director 1 failing
#   (XDP detached: its route withdrawn) while requests keep working.
# Cleans up after itself on exit, failure or Ctrl-C. Idempotent. Needs root.
#
#   scripts/demo.sh [--keep]     --keep leaves the fleet running and prints commands to try
#   scripts/demo.sh --frontdoor  instead: the front door alone (echo servers as
#                                proxies), director 1 failing in five ways while
#                                connections keep working (scripts/fleet/frontdoor.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

keep=()
frontdoor=
for arg in "$@"; do
    case "$arg" in
    --keep) keep=(--keep) ;;
    --frontdoor) frontdoor=1 ;;
    -h | --help) sed -n '3,23p' "$0"; exit 0 ;;
    *) echo "demo: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "demo: needs root (network namespaces, XDP): sudo $0 $*" >&2
    exit 1
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
trap 'echo "demo: failed: $BASH_COMMAND (exit $?)" >&2' ERR

say "installing packages (scripts/bootstrap.sh)"
"$root/scripts/bootstrap.sh"

say "building drover (default preset)"
cmake --preset default >/dev/null
if [ -n "$frontdoor" ]; then
    cmake --build --preset default -j "$(nproc)" --target e2e_frontdoor_deps >/dev/null
    say "the front door: two directors behind a BIRD 2 router with ECMP"
    exec "$root/scripts/fleet/frontdoor.sh" "$root/build/default"
fi
cmake --build --preset default -j "$(nproc)" --target e2e_fleet_deps >/dev/null

exec "$root/scripts/fleet/scenario.sh" "$root/build/default" --frontdoor "${keep[@]}"
