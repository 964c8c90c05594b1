#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# faults_consul_loss: Consul lost, emptied and restored (issue 13), on the
# fleet with one Consul dev agent (a restart comes back empty), under load
# through the VIP. One at a time, each with zero failed requests and the
# fleet back to its baseline:
#   consul_empty_key_by_key   Consul restarted empty; the operator keys put
#                             back one by one, 4 s apart (api before web;
#                             director config, proxies, then VIPs)
#   consul_empty_bulk         Consul restarted empty; scripts/kv-backup.sh import
#   director_partial          director/<cluster>/ deleted, then written back
#                             config, proxies, VIPs 4 s apart
#   drain_survives_loss       a node drained with droverctl stays drained
#                             (no request reaches it) through Consul
#                             restarted empty and restored in bulk
# usage: faults_consul_loss.sh BUILD-DIR [FAULT...]   (default: all, in this order)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
faults_main "$1"
shift
only=" ${*:-consul_empty_key_by_key consul_empty_bulk director_partial drain_survives_loss} "
pick() { case "$only" in *" $1 "*) faults_run "$@" ;; esac; }

backup=$FLEET_STATE/kv-backup.json
CONSUL_HTTP_ADDR=$FLEET_CONSUL "$FAULTS_SRC/scripts/kv-backup.sh" export "$backup"

consul_restart_empty() {
    "$FAULTS_SRC/tests/lib/consul-dev.sh" kill "$FLEET_STATE/consul" >/dev/null
    "$FAULTS_SRC/tests/lib/consul-dev.sh" restart "$FLEET_STATE/consul" >/dev/null
    # the watchers' next blocking query sees the empty tree
    sleep 3
}

put_back() { # KEY: the value the backup holds for drover/v1/KEY
    python3 - "$backup" "drover/v1/$1" "$FLEET_CONSUL" <<'PY'
import base64, json, sys, urllib.request
for e in json.load(open(sys.argv[1])):
    if e["key"] == sys.argv[2]:
        urllib.request.urlopen(urllib.request.Request(sys.argv[3] + "/v1/kv/" + e["key"],
                               data=base64.b64decode(e["value"]), method="PUT"), timeout=5).read()
        break
else:
    sys.exit("no %s in the backup" % sys.argv[2])
PY
}

key_by_key() {
    consul_restart_empty
    local d=director/$FLEET_DIRECTOR_CLUSTER
    put_back "haproxy/$FLEET_HAPROXY_CLUSTER/services/api"
    put_back "$d/config"
    sleep 4
    put_back "haproxy/$FLEET_HAPROXY_CLUSTER/services/web"
    put_back "$d/proxies/proxy-1"
    put_back "$d/proxies/proxy-2"
    sleep 4
    put_back "$d/vips/shop"
}

bulk() {
    consul_restart_empty
    CONSUL_HTTP_ADDR=$FLEET_CONSUL "$FAULTS_SRC/scripts/kv-backup.sh" import "$backup" >/dev/null
}

director_partial() {
    local d=director/$FLEET_DIRECTOR_CLUSTER
    curl -sf -X DELETE "$FLEET_CONSUL/v1/kv/drover/v1/$d/?recurse" >/dev/null
    sleep 3
    put_back "$d/config"
    sleep 4
    put_back "$d/proxies/proxy-1"
    put_back "$d/proxies/proxy-2"
    sleep 4
    put_back "$d/vips/shop"
}

drain_survives() {
    local n2 node2
    node2=$(fleet_node_ip node-2)
    ctl drain node-2 --reason "disk swap" >/dev/null
    drained() {
        fleet_servers proxy-1 web | grep " $node2:" | grep -q DRAIN &&
            fleet_servers proxy-2 web | grep " $node2:" | grep -q DRAIN
    }
    fleet_wait "node-2 in DRAIN on both proxies" 30 drained
    # in flight when the drain landed
    sleep 1
    n2=$(fleet_count load80 node node-2)
    CONSUL_HTTP_ADDR=$FLEET_CONSUL "$FAULTS_SRC/scripts/kv-backup.sh" export "$FLEET_STATE/kv-drained.json"
    consul_restart_empty
    sleep 3
    [ "$(fleet_count load80 node node-2)" = "$n2" ] ||
        fleet_die "drain_survives_loss: node-2 got $(($(fleet_count load80 node node-2) - n2)) requests while Consul was empty"
    CONSUL_HTTP_ADDR=$FLEET_CONSUL "$FAULTS_SRC/scripts/kv-backup.sh" import "$FLEET_STATE/kv-drained.json" >/dev/null
    sleep 3
    [ "$(fleet_count load80 node node-2)" = "$n2" ] ||
        fleet_die "drain_survives_loss: node-2 got $(($(fleet_count load80 node node-2) - n2)) requests after the restore"
    ctl ready node-2 >/dev/null
}

pick consul_empty_key_by_key 0 key_by_key
pick consul_empty_bulk 0 bulk
pick director_partial 0 director_partial
pick drain_survives_loss 0 drain_survives
echo "faults_consul_loss: ok"
