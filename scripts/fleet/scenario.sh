#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The fleet scenario, shared by scripts/demo.sh (narrated) and the e2e test
# tests/e2e/fleet (same steps; every figure shown is also asserted):
#
#   1. requests from the client to the VIP, director -> proxy -> NodePort
#   2. droverctl drain of a node with a reason: HAProxy shows DRAIN and the
#      reason, requests keep succeeding (zero failed), none reach the node
#   3. a proxy host drained at the director: a long-lived connection through
#      it survives (second chance), new connections go to the other proxy
#   4. a node added to the Kubernetes services reaches HAProxy through the
#      runtime API: reload counters unchanged, zero failed requests
#   5. droverctl status and the director's stats
# With --frontdoor (the demo): two directors behind the router, which runs
# BIRD 2 with ECMP over the VIP routes their drover-watchers announce
# (FLEET_FRONTDOOR in scripts/fleet/lib.sh); the route has two nexthops and
# flows spread over both directors, and a last step
#   6. director-1 fails (its XDP program detached) under load: its route is
#      withdrawn within the front door's fall time, requests keep working
#      through director-2 (failures only in that window); attached again,
#      it is announced again
#
# usage: scenario.sh BUILD-DIR [--keep] [--state DIR] [--frontdoor]
# Needs root (namespaces, XDP, bpffs). Everything is torn down on exit,
# Ctrl-C or failure, unless --keep (then scripts/fleet/down.sh STATE-DIR).
set -euo pipefail
FLEET_SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$FLEET_SRC/scripts/fleet/lib.sh"

BUILD=${1:?usage: scenario.sh BUILD-DIR [--keep] [--state DIR]}
BUILD=$(cd "$BUILD" && pwd)
shift
keep=0
state=""
while [ $# -gt 0 ]; do
    case "$1" in
    --keep) keep=1 ;;
    --state) state=$2; shift ;;
    --frontdoor) FLEET_FRONTDOOR=1 ;;
    *) fleet_die "unknown argument '$1'" ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "fleet: needs root (network namespaces, XDP)" >&2; exit 77; }

FLEET_BIN_DIRECTOR=$BUILD/xdp-lb/drover-director
FLEET_BIN_AGENT=$BUILD/agent-checker/drover-agent-checker
FLEET_BIN_EXPORTER=$BUILD/exporter/drover-exporter
FLEET_BIN_WATCHER=$BUILD/watcher/drover-watcher
FLEET_BIN_CTL=$BUILD/ctl/droverctl
XDP_PASS=$BUILD/tests/e2e/fleet/e2e_fleet_xdp_pass.bpf.o
for b in "$FLEET_BIN_DIRECTOR" "$FLEET_BIN_AGENT" "$FLEET_BIN_EXPORTER" "$FLEET_BIN_WATCHER" \
    "$FLEET_BIN_CTL" "$XDP_PASS"; do
    [ -e "$b" ] || fleet_die "$b is missing: build the e2e_fleet_deps target first"
done
for tool in haproxy consul curl ethtool python3 socat ss $([ "$FLEET_FRONTDOOR" != 1 ] || echo bird birdc); do
    command -v "$tool" >/dev/null || fleet_die "$tool is not installed (scripts/bootstrap.sh)"
done

# Leftovers of a run that was killed before its trap could run (SIGKILL,
# power loss): its owner is gone and it was not kept on purpose.
for old in /tmp/drover-fleet.* /tmp/drover-e2e-fleet.*; do
    if [ ! -f "$old/owner" ] || [ -e "$old/kept" ]; then continue; fi
    kill -0 "$(cat "$old/owner")" 2>/dev/null && continue
    echo "fleet: removing the leftovers of an interrupted run in $old"
    fleet_down "$old"
done

[ -n "$state" ] || state=$(mktemp -d /tmp/drover-fleet.XXXXXX)
fleet_init "$state"
echo $$ >"$FLEET_STATE/owner"
on_exit() {
    local rc=$?
    set +e
    if [ $rc -eq 130 ]; then
        echo "fleet: interrupted, tearing down" >&2
    elif [ $rc -ne 0 ]; then
        echo "---- fleet failed; last lines of every log:" >&2
        for f in "$FLEET_STATE"/*.log "$FLEET_STATE"/consul/consul.log "$FLEET_STATE"/kube/fixture.log; do
            [ -s "$f" ] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }
        done
    fi
    if [ $rc -ne 0 ] || [ "$keep" -eq 0 ]; then
        fleet_down "$FLEET_STATE"
    fi
    exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT TERM

ctl() { "$FLEET_BIN_CTL" --consul-addr "$FLEET_CONSUL" --author demo "$@"; }
dctl() { ctl --director-cluster "$FLEET_DIRECTOR_CLUSTER" "$@"; }

# ---------------------------------------------------------------- bring-up
fleet_say "network namespaces (run $FLEET_ID): client, router, $(fleet_directors | tr '\n' ',' | sed 's/,/, /g')proxy-1, proxy-2, node-1..4"
fleet_topology "$XDP_PASS"
if [ "$FLEET_FRONTDOOR" = 1 ]; then
    fleet_info "VIP $FLEET_VIP (ports $FLEET_PORT_web and $FLEET_PORT_api): client -> router -(BGP ECMP)-> director or director-2"
else
    fleet_info "VIP $FLEET_VIP (ports $FLEET_PORT_web and $FLEET_PORT_api) routed client -> router -> director"
fi

fleet_say "Consul dev agent and the Kubernetes API stand-in (host loopback, free ports)"
fleet_consul
fleet_kube_start
fleet_info "consul $FLEET_CONSUL; kube API $(cat "$FLEET_STATE/kube/addr")"
ctl init | sed 's/^/   droverctl init: /' # folder keys: no host wakes on writes elsewhere
fleet_info "kube: nodes node-1..3, NodePort services shop/web ($FLEET_NODE_PORT_WEB) and shop/api ($FLEET_NODE_PORT_API), annotated drover.io/exported"
for n in 1 2 3 4; do fleet_pod "node-$n"; done
fleet_info "pods: an HTTP server on node-1..4 answering its node name on both NodePorts (node-4 joins the cluster later)"

fleet_say "drover-exporter x2 (leader election through a Consul session lock)"
fleet_exporter 1
fleet_exporter 2
kv_ready() {
    local n
    for n in 1 2 3; do fleet_kv_get "$(fleet_node_key "$FLEET_CLUSTER" "node-$n")" | grep -q '"eligible":true' || return 1; done
    fleet_kv_get "kube/$FLEET_CLUSTER/services/shop/web/http" >/dev/null &&
        fleet_kv_get "kube/$FLEET_CLUSTER/services/shop/api/http" >/dev/null
}
fleet_wait "exporter writes nodes and services into Consul KV" 30 kv_ready
one_leader() {
    local a b
    a=$(fleet_exporter_metric 1 drover_exporter_leader) b=$(fleet_exporter_metric 2 drover_exporter_leader)
    { [ "${a:-0}" = 1 ] && [ "${b:-0}" = 0 ]; } || { [ "${a:-0}" = 0 ] && [ "${b:-0}" = 1 ]; }
}
fleet_wait "exactly one exporter leads" 30 one_leader
leader=$(fleet_kv_get "kube/$FLEET_CLUSTER/leader" | python3 -c 'import json, sys; print(json.load(sys.stdin)["holder"])')
fleet_info "leader: $leader; KV: $(curl -sf "$FLEET_CONSUL/v1/kv/drover/v1/kube/$FLEET_CLUSTER/?keys" | python3 -c 'import json, sys; print(", ".join(k.split("/", 4)[4] for k in json.load(sys.stdin)))')"

fleet_say "HAProxy services in KV (haproxy/$FLEET_HAPROXY_CLUSTER/services/web, api: VIP frontends, 6 slots, kube backends)"
fleet_haproxy_services

fleet_say "proxy hosts: drover-agent-checker, drover-watcher (runs HAProxy master-worker per service), decap XDP"
for p in proxy-1 proxy-2; do
    fleet_proxy "$p"
    fleet_info "$p: $(fleet_servers "$p" web | awk '{ printf "%s%s %s %s", sep, $1, $2, $3; sep = ", " }')"
done

if [ "$FLEET_FRONTDOOR" = 1 ]; then
    fleet_say "director hosts: director and director-2, each drover-director (XDP) + BIRD 2; the router runs BIRD 2 (eBGP to both, merge paths on)"
    fleet_director
    fleet_frontdoor_bird
    fleet_has_director_watcher || fleet_die "--frontdoor needs a drover-watcher with the director side"
else
    fleet_say "director host: drover-director (XDP) in front of proxy-1 and proxy-2"
    fleet_director
fi
if fleet_has_director_watcher; then
    dw=1
    fleet_info "drover-director attach: the XDP program and the tunnel settings (outer source, gateway MAC)"
    fleet_director_kv
    fleet_director_watcher
    dir_ready() { fleet_director_state_is proxy-1 active && fleet_director_state_is proxy-2 active; }
    fleet_wait "director-mode watcher applies director/$FLEET_DIRECTOR_CLUSTER/ (both proxies active, healthy)" 30 dir_ready
    fleet_info "drover-watcher director run: KV director/$FLEET_DIRECTOR_CLUSTER/ + HTTP health checks of each proxy -> table"
    fleet_director_status | sed -n '/^HOST/,$p' | sed 's/^/   /'
    if [ "$FLEET_FRONTDOOR" = 1 ]; then
        # BGP sessions (a few seconds), then the front door's rise rounds
        fleet_wait "both directors announce the VIP: the router's route has two nexthops" 60 \
            fleet_vip_nexthops_are 2
        fleet_info "router: $(ip -n "$(fleet_ns router)" route show "$FLEET_VIP/32" | tr -s ' \n' ' ')"
    fi
else
    dw=0
    fleet_info "this drover-watcher has no director side yet: the director's config is applied with drover-director apply"
fi

serving() { [ -n "$(fleet_get "$FLEET_PORT_web")" ] && [ -n "$(fleet_get "$FLEET_PORT_api")" ]; }
fleet_wait "the client gets answers through the VIP" 30 serving

# ---------------------------------------------------------------- step 1
fleet_say "1. requests from the client to http://$FLEET_VIP/ (director -> proxy -> NodePort)"
fleet_load_start load1 "$FLEET_PORT_web"
three_nodes() { [ "$(fleet_count load1 node node-1)" -gt 0 ] && [ "$(fleet_count load1 node node-2)" -gt 0 ] &&
    [ "$(fleet_count load1 node node-3)" -gt 0 ] && [ "$(fleet_count load1 ok)" -ge 60 ]; }
fleet_wait "answers from node-1, node-2 and node-3" 30 three_nodes
fleet_load_stop load1
fleet_info "$(fleet_counts_line load1)"
[ "$(fleet_count load1 failed)" = 0 ] || fleet_die "step 1: failed requests: $(fleet_counts_line load1)"
enc=$(fleet_director_stats | awk '$1 == "encap_v4" { print $2 }')
fleet_info "director encap_v4=$enc; proxy-1 fe_web connections $(fleet_fe_sessions proxy-1 web), proxy-2 $(fleet_fe_sessions proxy-2 web)"
[ "$enc" -gt 0 ] || fleet_die "step 1: the director encapsulated nothing"
if [ "$FLEET_FRONTDOOR" = 1 ]; then
    enc2=$(fleet_director_stats director-2 | awk '$1 == "encap_v4" { print $2 }')
    fleet_info "director-2 encap_v4=$enc2: the router spreads the flows over both directors (ECMP)"
    [ "$enc2" -gt 0 ] || fleet_die "step 1: director-2 encapsulated nothing (no ECMP)"
fi

# ---------------------------------------------------------------- step 2
fleet_say "2. droverctl drain node-2 --reason \"kernel upgrade\" while requests run"
fleet_load_start load2 "$FLEET_PORT_web"
ctl drain node-2 --reason "kernel upgrade" | sed 's/^/   /'
drained() {
    local p
    for p in proxy-1 proxy-2; do
        fleet_servers "$p" web | grep " $(fleet_node_ip node-2):" | grep -q "DRAIN" || return 1
    done
}
fleet_wait "HAProxy on both proxies shows node-2 in DRAIN" 30 drained
for p in proxy-1 proxy-2; do
    fleet_info "$p be_web: $(fleet_servers "$p" web | grep " $(fleet_node_ip node-2):")"
done
fleet_servers proxy-1 web | grep " $(fleet_node_ip node-2):" | grep -q "kernel upgrade" ||
    fleet_die "step 2: HAProxy's agent text does not carry the reason"
n2=$(fleet_count load2 node node-2)
ok0=$(fleet_count load2 ok)
more() { [ "$(fleet_count load2 ok)" -ge $((ok0 + 60)) ]; }
fleet_wait "60 more requests while node-2 drains" 30 more
fleet_load_stop load2
fleet_info "$(fleet_counts_line load2)"
[ "$(fleet_count load2 failed)" = 0 ] || fleet_die "step 2: failed requests during the drain"
[ "$(fleet_count load2 node node-2)" = "$n2" ] || fleet_die "step 2: node-2 got new requests while drained"
fleet_info "node-2 answered no request once drained; zero failed"
ctl ready node-2 | sed 's/^/   /'
undrained() { ! fleet_servers proxy-1 web | grep " $(fleet_node_ip node-2):" | grep -q DRAIN &&
    ! fleet_servers proxy-2 web | grep " $(fleet_node_ip node-2):" | grep -q DRAIN; }
fleet_wait "node-2 back in service" 30 undrained

# ---------------------------------------------------------------- step 3
fleet_say "3. a proxy host drained at the director with a long-lived connection through it"
mkdir -p "$FLEET_STATE/long"
fleet_bg long ip netns exec "$(fleet_ns client)" python3 "$FLEET_SRC/scripts/fleet/load.py" long \
    "http://$FLEET_VIP:$FLEET_PORT_web/" "$FLEET_STATE/long"
long_field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$FLEET_STATE/long/long" "$1"; }
long_ok() { [ -s "$FLEET_STATE/long/long" ] && [ "$(long_field ok)" -ge "$1" ]; }
fleet_wait "the long connection's first answers" 15 long_ok 3
lport=$(long_field port)
owner=""
for p in proxy-1 proxy-2; do
    if fleet_nsx "$p" ss -Htn state established "( sport = :$FLEET_PORT_web and dport = :$lport )" | grep -q .; then
        owner=$p
    fi
done
[ -n "$owner" ] || fleet_die "step 3: no proxy holds the long connection (client port $lport)"
[ "$owner" = proxy-1 ] && other=proxy-2 || other=proxy-1
fleet_info "long connection from client port $lport is held by $owner's HAProxy"
if [ "$dw" = 1 ]; then
    dctl director drain "$owner" --reason "reboot" | sed 's/^/   /'
    fleet_wait "the director watcher applies $owner draining" 30 fleet_director_state_is "$owner" draining
    fleet_director_status | sed -n '/^HOST/,$p' | sed 's/^/   /'
elif [ "$owner" = proxy-1 ]; then
    fleet_director_apply draining active
else
    fleet_director_apply active draining
fi
fleet_info "director: $owner draining (secondary in every row), $other primary"
ok0=$(long_field ok)
s_owner=$(fleet_fe_sessions "$owner" web)
s_other=$(fleet_fe_sessions "$other" web)
for i in $(seq 10); do fleet_get "$FLEET_PORT_web" >/dev/null || fleet_die "step 3: new request $i failed"; done
fleet_wait "20 more answers on the long connection" 30 long_ok $((ok0 + 20))
touch "$FLEET_STATE/long/stop-long"
fleet_wait "long connection ends" 10 fleet_not_running "$(fleet_pid long)"
[ "$(long_field failed)" = 0 ] || fleet_die "step 3: the long connection broke: $(long_field error)"
d_owner=$(($(fleet_fe_sessions "$owner" web) - s_owner))
d_other=$(($(fleet_fe_sessions "$other" web) - s_other))
sc=$(fleet_decap_stats "$other" | awk '$1 == "second_chance" || $1 == "second_chance_pass" { s += $2 } END { print s + 0 }')
fleet_info "long connection: $(long_field ok) answers, 0 failed, still on $owner (second chance: $other passed $sc packets on)"
fleet_info "10 new connections: $d_other to $other, $d_owner to $owner"
if [ "$d_owner" != 0 ] || [ "$d_other" -lt 10 ]; then
    fleet_die "step 3: new connections reached the drained proxy"
fi
[ "$sc" -gt 0 ] || fleet_die "step 3: no second-chance packets counted on $other"
if [ "$dw" = 1 ]; then
    # back through the whole GLB cycle: draining -> inactive -> filling -> active
    for step in deactivate:inactive fill:filling activate:active; do
        dctl director "${step%%:*}" "$owner" | sed 's/^/   /'
        fleet_wait "the director watcher applies $owner ${step#*:}" 30 fleet_director_state_is "$owner" "${step#*:}"
    done
else
    fleet_director_apply active active
fi
fleet_info "director: both proxies active again"

# ---------------------------------------------------------------- step 4
fleet_say "4. node-4 joins the cluster (kube API) while requests run: no HAProxy reload"
# First the leading exporter stops (SIGTERM: it releases the lock), so the
# standby replica is the one that publishes node-4.
for n in 1 2; do [ "$(fleet_exporter_metric "$n" drover_exporter_leader)" = 1 ] && lead=$n; done
standby=$((3 - lead))
kill -TERM "$(fleet_pid "exporter-$lead")"
fleet_wait "exporter-$lead exits" 10 fleet_not_running "$(fleet_pid "exporter-$lead")"
standby_leads() { [ "$(fleet_exporter_metric "$standby" drover_exporter_leader)" = 1 ]; }
fleet_wait "exporter-$standby takes over the leader lock" 30 standby_leads
fleet_info "exporter-$lead stopped; exporter-$standby leads now ($(fleet_kv_get "kube/$FLEET_CLUSTER/leader" | python3 -c 'import json, sys; print("leader key holder: " + json.load(sys.stdin)["holder"])'))"
r0=""
for p in proxy-1 proxy-2; do for s in $FLEET_SERVICES; do r0="$r0 $(fleet_reloads "$p" "$s")"; done; done
fleet_load_start load4 "$FLEET_PORT_web"
fleet_kube_add_node node-4
has4() { fleet_servers proxy-1 web | grep " $(fleet_node_ip node-4):$FLEET_NODE_PORT_WEB " | grep -q UP &&
    fleet_servers proxy-2 web | grep " $(fleet_node_ip node-4):$FLEET_NODE_PORT_WEB " | grep -q UP &&
    fleet_servers proxy-1 api | grep -q " $(fleet_node_ip node-4):$FLEET_NODE_PORT_API " &&
    fleet_servers proxy-2 api | grep -q " $(fleet_node_ip node-4):$FLEET_NODE_PORT_API "; }
fleet_wait "node-4 UP in HAProxy on both proxies" 30 has4
answers4() { [ "$(fleet_count load4 node node-4)" -ge 3 ]; }
fleet_wait "requests answered by node-4" 30 answers4
fleet_load_stop load4
r1=""
for p in proxy-1 proxy-2; do for s in $FLEET_SERVICES; do r1="$r1 $(fleet_reloads "$p" "$s")"; done; done
fleet_info "proxy-1 be_web: $(fleet_servers proxy-1 web | awk '{ printf "%s%s %s %s", sep, $1, $2, $3; sep = ", " }')"
fleet_info "$(fleet_counts_line load4)"
fleet_info "HAProxy reload counters (proxy-1 web api, proxy-2 web api): before$r0, after$r1"
[ "$(fleet_count load4 failed)" = 0 ] || fleet_die "step 4: failed requests during the node addition"
[ "$r0" = "$r1" ] || fleet_die "step 4: HAProxy reloaded for a node addition"

# ---------------------------------------------------------------- step 5
fleet_say "5. droverctl status and history"
ctl drain node-3 --reason "disk swap" --ttl 2h | sed 's/^/   /'
ctl status | sed 's/^/   /'
ctl history --limit 5 | sed 's/^/   /'
ctl status | grep -q "node/$FLEET_CLUSTER/node-3: drain" || fleet_die "step 5: status does not show node-3's drain"

# ---------------------------------------------------------------- step 6
if [ "$FLEET_FRONTDOOR" = 1 ]; then
    fleet_say "6. director fails (its XDP program detached) while requests run"
    fleet_load_start load6 "$FLEET_PORT_web"
    answered() { [ "$(fleet_count load6 ok)" -ge "$1" ]; }
    fleet_wait "requests through both directors" 30 answered 50
    f0=$(fleet_count load6 failed)
    t0=$(date +%s%N)
    fleet_director_detach director
    fleet_wait "director withdrawn: the router's route has one nexthop" 10 fleet_vip_nexthops_are 1
    ms=$((($(date +%s%N) - t0) / 1000000))
    fleet_info "director's VIP route withdrawn after $ms ms (front door: rounds 200 ms, fall 2); router: $(fleet_vip_via)"
    grep -q "XDP director not attached" "$FLEET_STATE/director-watcher.log" ||
        fleet_die "step 6: the withdrawal's reason is not in director's log"
    # requests caught in that window time out (5 s) before they count
    sleep 6
    f1=$(fleet_count load6 failed) ok1=$(fleet_count load6 ok)
    fleet_wait "requests keep working through director-2 (20 more answers)" 30 answered $((ok1 + 20))
    [ "$(fleet_count load6 failed)" = "$f1" ] ||
        fleet_die "step 6: requests failed after the withdrawal: $(fleet_counts_line load6)"
    fleet_info "failed requests: $((f1 - f0)), all in the window before the withdrawal; none since"
    fleet_director_attach director
    fleet_wait "director announced again: two nexthops" 30 fleet_vip_nexthops_are 2
    fleet_load_stop load6
    fleet_info "XDP attached again: announced again; $(fleet_counts_line load6)"
fi

fleet_say "drover-director stats"
fleet_director_stats | sed 's/^/   /'
if [ "$dw" = 1 ]; then
    fleet_say "drover-watcher director status"
    fleet_director_status | sed 's/^/   /'
fi

fleet_say "fleet scenario: ok"
if [ "$keep" -eq 1 ]; then
    touch "$FLEET_STATE/kept"
    leader_port=$(cat "$FLEET_STATE/exporter-$standby.metrics-port")
    cat <<EOF

The fleet keeps running (state in $FLEET_STATE). Try:
  ip netns exec $(fleet_ns client) curl -s http://$FLEET_VIP/
  $FLEET_BIN_CTL --consul-addr $FLEET_CONSUL status
  $FLEET_BIN_CTL --consul-addr $FLEET_CONSUL drain node-1 --reason test
  $FLEET_BIN_CTL --consul-addr $FLEET_CONSUL ready node-1
  echo "show stat" | socat -t 5 - UNIX-CONNECT:$FLEET_STATE/proxy-1/web.sock
  ip netns exec $(fleet_ns director) $FLEET_BIN_DIRECTOR stats --dev eth0 --pin-root $FLEET_STATE/bpffs/director
$([ "$dw" = 1 ] && echo "  $FLEET_BIN_WATCHER director status --dev eth0 --pin-root $FLEET_STATE/bpffs/director --director-snapshot-file $FLEET_STATE/director/snapshot.pb")
  curl -s http://127.0.0.1:$leader_port/metrics | grep drover_exporter_leader
  curl -s $FLEET_CONSUL/v1/kv/drover/v1/?recurse | python3 -m json.tool
Stop it: $FLEET_SRC/scripts/fleet/down.sh $FLEET_STATE
EOF
fi
