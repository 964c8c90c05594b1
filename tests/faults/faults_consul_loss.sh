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
#   refused_definition        web's definition replaced by one haproxy -c
#                             refuses (two frontends named alike) while
#                             node-3 is cordoned and uncordoned: each change is
#                             on both proxies' running config within a
#                             bound far below the periodic resync (printed
#                             as BENCH faults_refused_definition_apply_s),
#                             then the valid definition is put back
#   proxy_cut                 proxy-1's host cut off (its link at the router
#                             down) for about 6 s with KV present: the director's
#                             health checks move its rows to proxy-2; the
#                             failed requests of that failover are the
#                             budget of the next fault
#   proxy_cut_director_empty  the same (proxy-2) with director/<cluster>/
#                             deleted first (written back after): the
#                             failover is as fast (at most the proxy_cut
#                             count + 10)
# usage: faults_consul_loss.sh BUILD-DIR [FAULT...]   (default: all, in this order)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
faults_main "$1"
shift
only=" ${*:-consul_empty_key_by_key consul_empty_bulk director_partial drain_survives_loss refused_definition proxy_cut proxy_cut_director_empty} "
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

# Seconds from the KV change of node-3 until HAProxy on both proxies has
# applied it, both polled every 20 ms in one process: the node's record in
# Consul KV, then `show servers state be_web` on both stats sockets (a
# freed slot stays in MAINT, a placed one leaves it at once; UP follows
# with the health checks, not part of the apply).
# usage: node3_change_applied eligible|gone KUBE-OP   (bounded: 30 s for KV,
# 10 s apply; the poller runs before KUBE-OP is sent)
node3_change_applied() {
    local ready=$FLEET_STATE/apply-poller.ready out=$FLEET_STATE/apply-poller.out pid
    rm -f "$ready"
    python3 - "$1" "$FLEET_CONSUL/v1/kv/drover/v1/$(fleet_node_key "$FLEET_CLUSTER" node-3)?raw" \
        "$(fleet_node_ip node-3)" "$FLEET_STATE/proxy-1/web.sock" "$FLEET_STATE/proxy-2/web.sock" \
        "$FAULTS_SRC/tests/lib" "$ready" >"$out" <<'PY' &
import json, sys, time, urllib.request
want, url, ip, socks, lib = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:6], sys.argv[6]
ready = sys.argv[7]
sys.path.insert(0, lib)
import drover_testlib as t
eligible = want == "eligible"
def poll(what, bound, fn):
    end = time.monotonic() + bound
    while not fn():
        if time.monotonic() > end:
            sys.exit("gave up after %d s waiting for %s" % (bound, what))
        time.sleep(0.02)
def kv_done():
    with urllib.request.urlopen(url, timeout=2) as r:
        return json.loads(r.read()).get("eligible") == eligible
def applied(sock):
    rows = t.haproxy_servers_state(sock, "be_web").values()
    live = [r for r in rows if r["srv_addr"] == ip and not int(r["srv_admin_state"]) & 1]
    return bool(live) == eligible
if kv_done():
    sys.exit("node-3 is eligible:%s in KV already" % eligible)
open(ready, "w").close()
poll("node-3 eligible:%s in KV (the exporter)" % eligible, 30, kv_done)
t0 = time.monotonic()
poll("node-3 %s on both proxies' running web config" % want, 10,
     lambda: all(applied(s) for s in socks))
print("%.2f" % (time.monotonic() - t0))
PY
    pid=$!
    fleet_wait "the apply poller reads KV" 10 test -e "$ready"
    fleet_kube ctl "$FLEET_STATE/kube" "$2" '{"name": "node-3"}' >/dev/null
    wait "$pid" || fleet_die "refused_definition: node-3 $1 not applied (above)"
    cat "$out"
}

refused_definition() {
    local key=haproxy/$FLEET_HAPROXY_CLUSTER/services/web valid r1 a1 a2
    valid=$(fleet_kv_get "$key")
    r1=$(fleet_reloads proxy-1 web)
    # valid in KV, refused by haproxy -c: two frontends named alike
    fleet_kv_put "$key" "$(python3 -c 'import json, sys
d = json.loads(sys.argv[1]); f = dict(d["frontends"][0]); f["bind"] = ["127.0.0.1:1"]
d["frontends"].append(f); print(json.dumps(d))' "$valid")"
    refused() { [ "$(fleet_watcher_metric "$1" drover_watcher_services_refused)" = 1 ]; }
    fleet_wait "proxy-1's watcher: web's definition refused" 30 refused proxy-1
    fleet_wait "proxy-2's watcher: web's definition refused" 30 refused proxy-2
    fleet_nsx proxy-1 curl -sf "http://127.0.0.1:$(cat "$FLEET_STATE/proxy-1/metrics-port")/readyz" |
        grep -q "service web: check:" || fleet_die "refused_definition: /readyz has no detail line"
    a1=$(node3_change_applied gone cordon)
    a2=$(node3_change_applied eligible uncordon)
    faults_log "node-3 out applied in ${a1}s, back in ${a2}s, web's definition refused"
    echo "BENCH faults_refused_definition_apply_s $(printf '%s\n%s\n' "$a1" "$a2" | sort -g | tail -1)"
    [ "$(fleet_reloads proxy-1 web)" = "$r1" ] || fleet_die "refused_definition: web reloaded"
    fleet_kv_put "$key" "$valid"
    fleet_wait "proxy-1's watcher: no refusal" 30 fleet_watcher_metric_is proxy-1 drover_watcher_services_refused 0
    fleet_wait "proxy-2's watcher: no refusal" 30 fleet_watcher_metric_is proxy-2 drover_watcher_services_refused 0
}
fleet_watcher_metric_is() { [ "$(fleet_watcher_metric "$1" "$2")" = "$3" ]; }

# PROXY unreachable: its link at the router (rN, fleet_link) down; its own
# routes stay. Each fault cuts another proxy: the director's flap damping
# would keep one cut twice within a minute out for about 50 s.
cut_proxy() { # proxy-N
    local p=$1 dev=r$((2 + ${1#proxy-}))
    ip -n "$(fleet_ns router)" link set "$dev" down
    down() { fleet_director_status | awk -v p="$p" '$1 == p && $4 == "down" { f = 1 } END { exit !f }'; }
    # health interval 500 ms, fall 2
    fleet_wait "the director sees $p down" 20 down
    sleep 5
    ip -n "$(fleet_ns router)" link set "$dev" up
}

proxy_cut() { cut_proxy proxy-1; }

proxy_cut_director_empty() {
    local d=director/$FLEET_DIRECTOR_CLUSTER
    curl -sf -X DELETE "$FLEET_CONSUL/v1/kv/drover/v1/$d/?recurse" >/dev/null
    sleep 3
    cut_proxy proxy-2
    put_back "$d/config"
    put_back "$d/proxies/proxy-1"
    put_back "$d/proxies/proxy-2"
    put_back "$d/vips/shop"
}

pick consul_empty_key_by_key 0 key_by_key
pick consul_empty_bulk 0 bulk
pick director_partial 0 director_partial
pick drain_survives_loss 0 drain_survives
pick refused_definition 0 refused_definition
FAULTS_LAST_FAILED=
pick proxy_cut 1000 proxy_cut
# as fast as with KV present; without a proxy_cut run, its own count only
pick proxy_cut_director_empty "$((${FAULTS_LAST_FAILED:-1000} + 10))" proxy_cut_director_empty
echo "faults_consul_loss: ok"
