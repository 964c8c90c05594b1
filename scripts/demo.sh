#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's demo command. Installs what is missing, builds drover, and
# runs the parts of the fleet that exist today on this one machine, using
# only loopback:
#   - a real Consul dev agent on free loopback ports,
#   - a sample Kubernetes service and nodes written into Consul KV the way
#     drover-exporter writes them (docs/kv-schema.md),
#   - drover's Consul client (the one drover-watcher uses) reading them back.
# Cleans up after itself on exit or Ctrl-C. Idempotent.
#
#   scripts/demo.sh [--keep]     --keep leaves Consul running and prints how to explore
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

keep=0
for arg in "$@"; do
    case "$arg" in
    --keep) keep=1 ;;
    -h | --help) sed -n '3,13p' "$0"; exit 0 ;;
    *) echo "demo: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "installing packages (scripts/bootstrap.sh)"
"$root/scripts/bootstrap.sh"

say "building drover (default preset)"
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)" --target consul-kv-dump >/dev/null
dump="$root/build/default/tests/lib/consul-kv-dump"

state=$(mktemp -d /tmp/drover-demo.XXXXXX)
cleanup() {
    if [ "$keep" -eq 0 ]; then
        "$root/tests/lib/consul-dev.sh" stop "$state/consul" >/dev/null 2>&1 || true
        rm -rf "$state"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting a Consul dev agent on a free loopback port"
"$root/tests/lib/consul-dev.sh" start "$state/consul" >/dev/null
addr=$(cat "$state/consul/addr")
echo "consul at $addr"

prefix=drover/v1/
put() { curl -sf -X PUT --data-binary "$2" "$addr/v1/kv/$prefix$1" >/dev/null; }

say "writing a sample service and two nodes as drover-exporter does"
put kube/demo/services/default/web/http \
    '{"cluster":"demo","namespace":"default","service":"web","port_name":"http","protocol":"TCP","node_port":30080}'
put kube/demo/nodes/node-a '{"name":"node-a","address":"10.0.0.11","ready":true,"schedulable":true,"eligible":true}'
put kube/demo/nodes/node-b '{"name":"node-b","address":"10.0.0.12","ready":false,"schedulable":true,"eligible":false}'

say "reading them back with drover's Consul client (recursive get of $prefix)"
"$dump" "$addr" "$prefix"

if [ "$keep" -eq 1 ]; then
    say "left running (--keep)"
    echo "  $dump $addr $prefix"
    echo "  curl -s $addr/v1/kv/${prefix}?recurse | python3 -m json.tool"
    echo "  stop it: $root/tests/lib/consul-dev.sh stop $state/consul"
fi
say "demo finished"
