#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The front door of anycast proxy hosts (no director tier; docs/frontdoor.md):
#
#   router (BIRD 2, eBGP to both hosts, merge paths on)
#     |------ host1: HAProxy services a (VIP A) and b (VIP B), BIRD 2,
#     |              drover-watcher anycast run
#     |------ host2: the same
#
# Both hosts announce both VIPs (two nexthops each at the router). Then
# service b's HAProxy on host1 is stopped: VIP B is withdrawn from host1
# only (the router keeps host2's path for B and both paths for A). Then it
# is started again: announced again. Then `droverctl host drain host1
# --wait`: both VIPs withdrawn from host1 only after the graceful-shutdown
# time, droverctl reports it idle, `droverctl status` shows it drained;
# `host undrain host1`: announced again (Consul dev agent in the router's
# namespace, reachable from both hosts).
#
# usage: anycast.sh drover-watcher consul-dev.sh droverctl
set -euo pipefail
WATCHER=${1:?usage: anycast.sh drover-watcher consul-dev.sh droverctl}
CONSUL_DEV=${2:?usage: anycast.sh drover-watcher consul-dev.sh droverctl}
DROVERCTL=${3:?usage: anycast.sh drover-watcher consul-dev.sh droverctl}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib/director_netns.sh"

if [ "$(id -u)" != 0 ]; then
    echo "e2e_frontdoor_anycast: needs root (network namespaces)" >&2
    exit 77
fi
for t in bird birdc haproxy consul; do
    command -v $t >/dev/null || { echo "e2e_frontdoor_anycast: $t not installed (scripts/bootstrap.sh)" >&2; exit 77; }
done

id=$(printf '%x%04x' $$ $((RANDOM)))
RT=fa-rt-$id H1=fa-h1-$id H2=fa-h2-$id
NSS="$RT $H1 $H2"
NET=10.95
VIPA=10.95.100.1 VIPB=10.95.100.2
TMP=$(mktemp -d /tmp/drover-e2e-anycast.XXXXXX)
PIDS=""

cleanup() {
    local rc=$?
    set +e
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for ns in $NSS; do
        for f in "$TMP/$ns"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
    done
    wait 2>/dev/null
    if [ $rc -ne 0 ]; then
        echo "---- failure (line ${FAILED_LINE:-?}): logs" >&2
        for f in "$TMP"/*/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 20 "$f" >&2; }; done
        ip -n "$RT" route >&2
    fi
    [ -d "$TMP/consul" ] && "$CONSUL_DEV" stop "$TMP/consul" >/dev/null 2>&1
    for ns in $NSS; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$TMP"
    exit $rc
}
trap 'FAILED_LINE=$LINENO' ERR
trap cleanup EXIT INT TERM
fail() { echo "e2e_frontdoor_anycast: $*" >&2; exit 1; }

for ns in $NSS; do
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
    mkdir -p "$TMP/$ns/cfg"
done
netns_link "$RT" th1 "$H1" $NET 1
netns_link "$RT" th2 "$H2" $NET 2

cat >"$TMP/$RT/bird.conf" <<BIRD
router id $NET.0.1;
protocol device { scan time 1; }
protocol kernel { ipv4 { import none; export all; }; merge paths on; }
template bgp host {
    local as 65000; hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2;
    ipv4 { import all; export none; };
}
protocol bgp h1 from host { neighbor $NET.1.2 as 65002; }
protocol bgp h2 from host { neighbor $NET.2.2 as 65002; }
BIRD
nsx "$RT" bird -c "$TMP/$RT/bird.conf" -s "$TMP/$RT/bird.ctl" -P "$TMP/$RT/bird.pid"
nsx "$RT" "$CONSUL_DEV" start "$TMP/consul" -client 0.0.0.0 >"$TMP/consul-start.log" 2>&1 ||
    fail "consul dev agent did not start: $(tail -n 5 "$TMP/consul-start.log")"
CPORT=$(cat "$TMP/consul/http_port")
ctl() { nsx "$RT" "$DROVERCTL" --consul-addr "http://127.0.0.1:$CPORT" --author e2e "$@"; }

service_cfg() { # ns service vip port
    cat >"$TMP/$1/cfg/$2.cfg" <<CFG
global
    stats socket $TMP/$1/haproxy-$2.sock mode 600 level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe_$2
    bind $3:8080
    default_backend be_$2
backend be_$2
    server s1 127.0.0.1:$4 check inter 200ms
CFG
}
start_haproxy() { # ns service
    nsx "$1" haproxy -D -f "$TMP/$1/cfg/$2.cfg" -p "$TMP/$1/haproxy-$2.pid" >>"$TMP/$1/haproxy.log" 2>&1
}
host() { # ns index
    local ns=$1 i=$2
    nsx "$ns" ip addr add "$VIPA/32" dev lo
    nsx "$ns" ip addr add "$VIPB/32" dev lo
    # the backends' server: one HTTP answerer per service
    ip netns exec "$ns" python3 "$HERE/../../lib/drover_testlib.py" serve-http 127.0.0.1 9001 \
        >"$TMP/$ns/backend-a.log" 2>&1 &
    PIDS="$PIDS $!"
    ip netns exec "$ns" python3 "$HERE/../../lib/drover_testlib.py" serve-http 127.0.0.1 9002 \
        >"$TMP/$ns/backend-b.log" 2>&1 &
    PIDS="$PIDS $!"
    service_cfg "$ns" a $VIPA 9001
    service_cfg "$ns" b $VIPB 9002
    start_haproxy "$ns" a
    start_haproxy "$ns" b
    : >"$TMP/$ns/vips.conf"
    cat >"$TMP/$ns/bird.conf" <<BIRD
router id $NET.$i.2;
protocol device { scan time 1; }
include "$TMP/$ns/vips.conf";
protocol bgp uplink {
    local $NET.$i.2 as 65002; neighbor $NET.$i.1 as 65000;
    hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2;
    ipv4 { import none; export where proto = "drover_vips"; next hop self; };
}
BIRD
    nsx "$ns" bird -c "$TMP/$ns/bird.conf" -s "$TMP/$ns/bird.ctl" -P "$TMP/$ns/bird.pid"
    ip netns exec "$ns" "$WATCHER" anycast run --config-dir "$TMP/$ns/cfg" \
        --haproxy-stats-socket "$TMP/$ns/haproxy-{service}.sock" --stat-timeout 500ms \
        --bird-socket "$TMP/$ns/bird.ctl" --bird-include "$TMP/$ns/vips.conf" \
        --frontdoor-state "$TMP/$ns/frontdoor.json" --frontdoor-interval 200ms \
        --frontdoor-rise 2 --frontdoor-fall 2 --frontdoor-flap-half-life 1s --metrics-addr "" \
        --consul-addr "http://$NET.$i.1:$CPORT" --host-name "host$i" \
        --frontdoor-drain-withdraw 1s --log-level debug >>"$TMP/$ns/anycast.log" 2>&1 &
    PIDS="$PIDS $!"
}
host "$H1" 1
host "$H2" 2

now_ms() { echo $(($(date +%s%N) / 1000000)); }
nexthops() { # vip
    local r
    r=$(ip -n "$RT" route show "$1/32")
    if [ -z "$r" ]; then echo 0; elif grep -q nexthop <<<"$r"; then grep -c nexthop <<<"$r"; else echo 1; fi
}
wait_route() { # vip nexthops seconds what
    local deadline=$((SECONDS + $3))
    while [ "$(nexthops "$1")" != "$2" ]; do
        [ $SECONDS -lt $deadline ] || fail "timed out after $3 s waiting for $4 (route: '$(ip -n "$RT" route show "$1/32")')"
        sleep 0.05
    done
}
wait_route $VIPA 2 60 "both hosts announcing VIP A"
wait_route $VIPB 2 20 "both hosts announcing VIP B"
echo "both hosts announce both VIPs: A via $(ip -n "$RT" route show $VIPA/32 | grep -o 'via [0-9.]*' | tr '\n' ' ')"

t0=$(now_ms)
kill "$(cat "$TMP/$H1/haproxy-b.pid")"
wait_route $VIPB 1 10 "VIP B withdrawn from host1"
ms=$(($(now_ms) - t0))
ip -n "$RT" route show $VIPB/32 | grep -q "via $NET.2.2" || fail "VIP B is not left on host2"
[ "$(nexthops $VIPA)" = 2 ] || fail "VIP A lost a path although its service runs"
grep -q "VIP $VIPB withdrawn.*HAProxy of service b does not answer" "$TMP/$H1/anycast.log" ||
    fail "withdrawal reason not logged"
echo "service b stopped on host1: VIP B withdrawn from host1 only after $ms ms; VIP A keeps both paths"

start_haproxy "$H1" b
wait_route $VIPB 2 20 "VIP B announced again by host1"
echo "service b back on host1: VIP B on both hosts again"

# ---- drain host1 through droverctl ----
t0=$(now_ms)
ctl host drain host1 --reason "kernel upgrade" --wait 20s >"$TMP/drain.out" 2>&1 &
CTL=$!
wait_route $VIPA 1 10 "VIP A withdrawn from host1 (drained)"
wait_route $VIPB 1 10 "VIP B withdrawn from host1 (drained)"
ms=$(($(now_ms) - t0))
for v in $VIPA $VIPB; do
    ip -n "$RT" route show $v/32 | grep -q "via $NET.2.2" || fail "$v is not left on host2"
done
grep -q "graceful-shutdown" "$TMP/$H1/anycast.log" || fail "no graceful shutdown before the withdrawal"
wait "$CTL" || fail "droverctl host drain failed: $(cat "$TMP/drain.out")"
grep -q "host host1: nothing announced.*can be worked on" "$TMP/drain.out" ||
    fail "droverctl did not report host1 idle: $(cat "$TMP/drain.out")"
ctl status >"$TMP/status.out" 2>&1 || fail "droverctl status failed: $(cat "$TMP/status.out")"
grep -q "host1 (anycast, DRAINED): $VIPA withdrawn" "$TMP/status.out" ||
    fail "droverctl status does not show host1 drained: $(cat "$TMP/status.out")"
grep -q "host2 (anycast): $VIPA announced; $VIPB announced" "$TMP/status.out" ||
    fail "droverctl status does not show host2 announcing: $(cat "$TMP/status.out")"
echo "host1 drained (droverctl): both VIPs withdrawn from host1 only after $ms ms (graceful shutdown 1 s); droverctl reported it idle"
ctl host undrain host1 >/dev/null
wait_route $VIPA 2 20 "VIP A announced again by host1 (undrained)"
wait_route $VIPB 2 20 "VIP B announced again by host1 (undrained)"
echo "host1 undrained: both VIPs on both hosts again"
echo "e2e_frontdoor_anycast: ok"
