#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The front door end to end (issue 18, docs/frontdoor.md): two directors
# behind a router running BIRD 2 with ECMP, each announcing the VIP through
# its own BIRD only while it serves it.
#
#   client --- router (BIRD 2: eBGP to both directors, merge paths on,
#                 |    L4 multipath hash; Consul dev agent)
#                 |------ dir1 (XDP director, drover-watcher director + BIRD 2)
#                 |------ dir2 (same)
#                 |------ proxy1 (XDP decap, VIP on lo, echo server, /healthz)
#                 |------ proxy2 (same)
#
# With long-lived connections and an open-loop load through the VIP:
#  1. both directors announce; the router's route has two nexthops; flows
#     spread over both (director counters).
#  2. `droverctl host drain dir1 --wait`: graceful shutdown, withdraw, its
#     packet counter stops (droverctl reports it); 0 failed, 0 broken;
#     `droverctl status` shows it; `droverctl host undrain dir1`.
#  3. detach dir1's XDP: withdrawn within the fall time (failures only in
#     that window, reported); attach again: announced after rise.
#  4. kill -9 dir1's watcher with XDP attached: the route stays and traffic
#     works; then detach XDP: the guard (as its systemd timer would)
#     withdraws it; attach and restart: announced again.
#  5. cut dir1's link: withdrawn after the BGP hold time; restore:
#     announced again.
#  6. Consul killed for 10 s, then restarted empty for 10 s: both directors
#     keep announcing (two nexthops at every sample); 0 failed, 0 broken.
# FRONTDOOR_BENCH=FILE: the figures as BENCH lines into FILE.
#
# usage: run.sh drover-watcher drover-director xdp_pass.bpf.o consul-dev.sh droverctl
set -euo pipefail
WATCHER=${1:?usage: run.sh drover-watcher drover-director xdp_pass.bpf.o consul-dev.sh droverctl}
DIRECTOR=${2:?}
XDP_PASS=${3:?}
CONSUL_DEV=${4:?}
DROVERCTL=${5:?}
HERE=$(cd "$(dirname "$0")" && pwd)
E2E=$HERE/../director
. "$HERE/../../lib/director_netns.sh"

if [ "$(id -u)" != 0 ]; then
    echo "e2e_frontdoor: needs root (network namespaces, XDP)" >&2
    exit 77
fi
for t in bird birdc consul; do
    command -v $t >/dev/null || { echo "e2e_frontdoor: $t not installed (scripts/bootstrap.sh)" >&2; exit 77; }
done

id=$(printf '%x%04x' $$ $((RANDOM)))
CLI=fd-cli-$id RT=fd-rt-$id D1=fd-d1-$id D2=fd-d2-$id P1=fd-p1-$id P2=fd-p2-$id
NSS="$CLI $RT $D1 $D2 $P1 $P2"
NET=10.94
VIP=10.94.100.1
PORT=8080
HPORT=8081
CLUSTER=fd
ROOT=drover/v1/
TMP=$(mktemp -d /tmp/drover-e2e-frontdoor.XXXXXX)
PIDS="" W1="" W2="" GUARD="" LOAD=""
# timings of the front door and BGP under test
INTERVAL_MS=200 RISE=2 FALL=2 HOLD=3 DRAIN_WITHDRAW_MS=1500

cleanup() {
    local rc=$?
    set +e
    [ -n "$LOAD" ] && touch "$TMP/load/stop"
    for p in $GUARD $W1 $W2 $LOAD $PIDS; do kill "$p" 2>/dev/null; done
    for ns in $RT $D1 $D2; do
        [ -f "$TMP/$ns/bird.pid" ] && kill "$(cat "$TMP/$ns/bird.pid")" 2>/dev/null
    done
    wait 2>/dev/null
    if [ $rc -ne 0 ]; then
        echo "---- failure (line ${FAILED_LINE:-?}): logs and state" >&2
        for f in "$TMP"/*.log "$TMP"/*/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 25 "$f" >&2; }; done
        echo "== router route" >&2
        ip -n "$RT" route show "$VIP" >&2
        birdc -s "$TMP/$RT/bird.ctl" show protocols >&2
        for ns in $D1 $D2; do [ -f "$TMP/$ns/frontdoor.json" ] && { echo "== $ns frontdoor" >&2; cat "$TMP/$ns/frontdoor.json" >&2; echo >&2; }; done
        [ -f "$TMP/load/counts" ] && { echo "== load" >&2; cat "$TMP/load/counts" >&2; echo >&2; }
    fi
    [ -d "$TMP/consul" ] && "$CONSUL_DEV" stop "$TMP/consul" >/dev/null 2>&1
    for ns in $NSS; do ip netns del "$ns" 2>/dev/null; done
    umount "$TMP/bpffs" 2>/dev/null
    rm -rf "$TMP"
    exit $rc
}
trap 'FAILED_LINE=$LINENO' ERR
trap cleanup EXIT INT TERM

fail() { echo "e2e_frontdoor: $*" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- topology ----
mkdir -p "$TMP/bpffs" "$TMP/load"
mount -t bpf bpf "$TMP/bpffs"
for ns in $NSS; do
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
    mkdir -p "$TMP/$ns"
done
link() { # ns router-dev index
    netns_link "$RT" "$2" "$1" $NET "$3"
    [ "$1" = "$CLI" ] || ip -n "$RT" link set dev "$2" xdp obj "$XDP_PASS" sec xdp
}
link "$CLI" tc 1
link "$D1" td1 2
link "$P1" tp1 3
link "$P2" tp2 4
link "$D2" td2 5
ip -n "$CLI" link set eth0 mtu 1400
ip -n "$RT" link set tc mtu 1400
nsx "$CLI" ethtool -K eth0 tx off >/dev/null
for ns in $NSS; do netns_forwarding "$ns"; done
nsx "$RT" sysctl -qw net.ipv4.fib_multipath_hash_policy=1
for ns in $P1 $P2; do ip -n "$ns" addr add "$VIP/32" dev lo; done

# ---- BIRD: the router and one per director ----
cat >"$TMP/$RT/bird.conf" <<EOF
router id $NET.1.1;
protocol device { scan time 1; }
protocol kernel { ipv4 { import none; export all; }; merge paths on; }
template bgp director {
    local as 65000; hold time $HOLD; keepalive time 1;
    connect retry time 1; error wait time 1, 2;
    ipv4 {
        # RFC 8326: a route in graceful shutdown is the least preferred
        import filter { if (65535, 0) ~ bgp_community then bgp_local_pref = 0; accept; };
        export none;
    };
}
protocol bgp d1 from director { neighbor $NET.2.2 as 65001; }
protocol bgp d2 from director { neighbor $NET.5.2 as 65001; }
EOF
dirbird() { # ns index
    : >"$TMP/$1/drover-vips.conf"
    cat >"$TMP/$1/bird.conf" <<EOF
router id $NET.$2.2;
protocol device { scan time 1; }
include "$TMP/$1/drover-vips.conf";
protocol bgp uplink {
    local $NET.$2.2 as 65001; neighbor $NET.$2.1 as 65000;
    hold time $HOLD; keepalive time 1; connect retry time 1; error wait time 1, 2;
    ipv4 { import none; export where proto = "drover_vips"; next hop self; };
}
EOF
}
dirbird "$D1" 2
dirbird "$D2" 5
for ns in $RT $D1 $D2; do
    nsx "$ns" bird -c "$TMP/$ns/bird.conf" -s "$TMP/$ns/bird.ctl" -P "$TMP/$ns/bird.pid" ||
        fail "bird did not start in $ns"
done

# ---- directors, proxies ----
key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
attach() { # ns index router-dev
    local mac
    mac=$(nsx "$RT" cat "/sys/class/net/$3/address")
    cat >"$TMP/$1/director.json" <<JSON
{"hash_key": "$key", "source_v4": "$NET.$2.2", "gateway_mac": "$mac", "vips": [], "proxies": []}
JSON
    nsx "$1" "$DIRECTOR" attach --dev eth0 --director-config "$TMP/$1/director.json" \
        --pin-root "$TMP/bpffs/$1" >>"$TMP/$1/director.log" 2>&1
}
detach() { nsx "$1" "$DIRECTOR" detach --dev eth0 --pin-root "$TMP/bpffs/$1" >>"$TMP/$1/director.log" 2>&1; }
attach "$D1" 2 td1
attach "$D2" 5 td2
for ns in $P1 $P2; do nsx "$ns" "$DIRECTOR" decap attach --dev eth0 --pin-root "$TMP/bpffs/$ns"; done
ip netns exec "$P1" python3 "$E2E/tcp_echo.py" proxy1 $PORT >"$TMP/echo1.log" 2>&1 &
PIDS="$PIDS $!"
ip netns exec "$P2" python3 "$E2E/tcp_echo.py" proxy2 $PORT >"$TMP/echo2.log" 2>&1 &
PIDS="$PIDS $!"
for ns in $P1 $P2; do
    ip netns exec "$ns" python3 "$HERE/../../lib/drover_testlib.py" serve-http 0.0.0.0 $HPORT \
        >"$TMP/$ns/health.log" 2>&1 &
    PIDS="$PIDS $!"
done

# ---- Consul in the router's namespace, reachable from both directors ----
nsx "$RT" "$CONSUL_DEV" start "$TMP/consul" -client 0.0.0.0 >"$TMP/consul-start.log" 2>&1 ||
    fail "consul dev agent did not start: $(tail -n 5 "$TMP/consul-start.log")"
CPORT=$(cat "$TMP/consul/http_port")
kvput() { # key json
    nsx "$RT" curl -sf --max-time 5 -X PUT --data "$2" "http://127.0.0.1:$CPORT/v1/kv/$ROOT$1" |
        grep -q true || fail "KV PUT $1 failed"
}
ctl() { nsx "$RT" "$DROVERCTL" --consul-addr "http://127.0.0.1:$CPORT" --author e2e "$@"; }
kvput "director/$CLUSTER/config" "{\"hash_key\":\"$key\"}"
kvput "director/$CLUSTER/vips/web" "{\"address\":\"$VIP\",\"ports\":[$PORT],\"protocol\":\"tcp\"}"
for i in 1 2; do
    kvput "director/$CLUSTER/proxies/proxy$i" \
        "{\"address\":\"$NET.$((i + 2)).2\",\"state\":\"active\",\"health\":{\"port\":$HPORT,\"path\":\"/healthz\"}}"
done

start_watcher() { # ns index host-name -> pid in WPID
    ip netns exec "$1" "$WATCHER" director run --director-cluster $CLUSTER --dev eth0 \
        --pin-root "$TMP/bpffs/$1" --consul-addr "http://$NET.$2.1:$CPORT" \
        --director-snapshot-file "$TMP/$1/director.pb" --metrics-addr "" \
        --health-interval 500ms --health-timeout 1s --health-rise 2 --health-fall 3 \
        --verify-interval 1s --host-name "$3" \
        --bird-socket "$TMP/$1/bird.ctl" --bird-include "$TMP/$1/drover-vips.conf" \
        --frontdoor-state "$TMP/$1/frontdoor.json" --frontdoor-interval ${INTERVAL_MS}ms \
        --frontdoor-rise $RISE --frontdoor-fall $FALL --frontdoor-flap-half-life 500ms \
        --frontdoor-drain-withdraw ${DRAIN_WITHDRAW_MS}ms --log-level debug \
        >>"$TMP/$1/watcher.log" 2>&1 &
    WPID=$!
}
start_watcher "$D1" 2 dir1
W1=$WPID
start_watcher "$D2" 5 dir2
W2=$WPID
# dir1's guard, as its systemd timer runs it (deploy/systemd)
(while :; do
    ip netns exec "$D1" "$WATCHER" director frontdoor-guard --dev eth0 \
        --pin-root "$TMP/bpffs/$D1" --bird-socket "$TMP/$D1/bird.ctl" \
        --bird-include "$TMP/$D1/drover-vips.conf" --frontdoor-state "$TMP/$D1/frontdoor.json" \
        --frontdoor-lease 1s >>"$TMP/$D1/guard.log" 2>&1
    sleep 0.25
done) &
GUARD=$!

# ---- probes ----
nexthops() { # -> how many nexthops the router's route to the VIP has (0: none)
    local r
    r=$(ip -n "$RT" route show "$VIP/32")
    if [ -z "$r" ]; then echo 0; elif grep -q nexthop <<<"$r"; then grep -c nexthop <<<"$r"; else echo 1; fi
}
via() { ip -n "$RT" route show "$VIP/32" | grep -o "via [0-9.]*" | tr '\n' ' '; }
wait_nexthops() { # n seconds what -> waited ms on stdout
    local t0 deadline
    t0=$(now_ms)
    deadline=$((t0 + $2 * 1000))
    while [ "$(nexthops)" != "$1" ]; do
        [ "$(now_ms)" -lt $deadline ] || fail "timed out after $2 s waiting for $3 (router route: '$(ip -n "$RT" route show "$VIP/32")')"
        sleep 0.02
    done
    echo $(($(now_ms) - t0))
}
encap() { # ns -> encap_v4 counter of its director
    nsx "$1" "$DIRECTOR" stats --dev eth0 --pin-root "$TMP/bpffs/$1" 2>/dev/null |
        awk '$1 == "encap_v4" { print $2 }'
}
count() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$TMP/load/counts" "$1"; }

# ---- 1. both announce, two nexthops, flows spread ----
# BGP up (a few seconds) + rise rounds once the tables are applied
wait_nexthops 2 60 "both directors announced" >/dev/null
echo "1: router route to $VIP has two nexthops: $(via)"
ip netns exec "$CLI" python3 "$HERE/load.py" "$VIP" $PORT "$TMP/load" 8 >"$TMP/load.log" 2>&1 &
LOAD=$!
deadline=$((SECONDS + 20))
while [ ! -f "$TMP/load/counts" ] || [ "$(count ok)" -lt 100 ] || [ "$(count long_alive)" -lt 8 ]; do
    [ $SECONDS -lt $deadline ] || fail "load did not get going: $(cat "$TMP/load/counts" 2>/dev/null)"
    sleep 0.1
done
e1=$(encap "$D1") e2=$(encap "$D2")
[ "$e1" -gt 0 ] && [ "$e2" -gt 0 ] || fail "flows did not spread over both directors: encap $e1 / $e2"
[ "$(count failed)" -eq 0 ] && [ "$(count broken)" -eq 0 ] ||
    fail "failures with both directors up: $(cat "$TMP/load/counts")"
echo "1: flows spread: dir1 encapsulated $e1 packets, dir2 $e2"

phase_start() { F0=$(count failed) B0=$(count broken); }
phase_failed() { echo $(($(count failed) - F0)); }
phase_broken() { echo $(($(count broken) - B0)); }

# ---- 2. drain dir1 ----
phase_start
ctl host drain dir1 --reason upgrade --wait 30s >"$TMP/drain.out" 2>&1 &
CTLPID=$!
t=$(wait_nexthops 1 10 "dir1's graceful shutdown to take it out of the multipath route")
echo "2: drain: graceful shutdown moved the route to $(via)after $t ms"
grep -q "graceful-shutdown" "$TMP/$D1/watcher.log" || fail "no graceful-shutdown in dir1's log"
# withdrawn after the drain time; then its counters fall to zero
deadline=$((SECONDS + 10))
while birdc -s "$TMP/$D1/bird.ctl" show route protocol drover_vips | grep -q "$VIP"; do
    [ $SECONDS -lt $deadline ] || fail "dir1 did not withdraw after the drain time"
    sleep 0.05
done
wait "$CTLPID" || fail "droverctl host drain failed: $(cat "$TMP/drain.out")"
grep -q "can be worked on" "$TMP/drain.out" || fail "droverctl did not report dir1 idle: $(cat "$TMP/drain.out")"
before=$(encap "$D1")
sleep 1
after=$(encap "$D1")
[ "$after" = "$before" ] || fail "dir1 still forwards after its drain: encap $before -> $after"
ctl status >"$TMP/status.out" 2>&1 || fail "droverctl status failed: $(cat "$TMP/status.out")"
grep -q "dir1 (cluster $CLUSTER, table [0-9a-f]*, DRAINED): $VIP withdrawn" "$TMP/status.out" ||
    fail "droverctl status does not show dir1 drained: $(cat "$TMP/status.out")"
grep -q "dir2 (cluster $CLUSTER, table [0-9a-f]*): $VIP announced" "$TMP/status.out" ||
    fail "droverctl status does not show dir2 announcing: $(cat "$TMP/status.out")"
if grep -q "ALERT" "$TMP/status.out"; then fail "directors disagree: $(cat "$TMP/status.out")"; fi
drain_failed=$(phase_failed) drain_broken=$(phase_broken)
echo "2: drained: dir1 withdrawn, packet counter still ($after); failed $drain_failed, broken $drain_broken"
[ "$drain_failed" -eq 0 ] && [ "$drain_broken" -eq 0 ] ||
    fail "drain lost traffic: $(cat "$TMP/load/counts")"
ctl host undrain dir1 >/dev/null
wait_nexthops 2 15 "dir1 announced again after undrain" >/dev/null
ctl history | grep -q "e2e (cli) host-drain frontdoor/hosts/dir1" || fail "drain not audited"
echo "2: undrained: two nexthops again"

# ---- 3. detach dir1's XDP ----
phase_start
t0=$(now_ms)
detach "$D1"
wait_nexthops 1 10 "dir1 withdrawn after its XDP program went away" >/dev/null
withdraw_ms=$(($(now_ms) - t0))
sleep 2.5 # requests caught in the window time out (2 s) before they are counted
detach_failed=$(phase_failed) detach_broken=$(phase_broken)
echo "3: XDP detached: withdrawn after $withdraw_ms ms (round ${INTERVAL_MS} ms x fall $FALL); failed $detach_failed, broken $detach_broken in that window"
[ "$withdraw_ms" -lt $((INTERVAL_MS * (FALL + 2) + 2000)) ] ||
    fail "withdrawal took $withdraw_ms ms"
grep -q "XDP director not attached" "$TMP/$D1/watcher.log" || fail "withdraw reason not logged"
attach "$D1" 2 td1
wait_nexthops 2 20 "dir1 announced again after XDP came back" >/dev/null
echo "3: XDP attached again: two nexthops"

# ---- 4. kill -9 dir1's watcher with XDP attached, then detach ----
phase_start
kill -9 "$W1"
wait "$W1" 2>/dev/null || true
W1=""
sleep 3 # well past the lease (1 s) and several guard runs
[ "$(nexthops)" = 2 ] || fail "the route went away with the watcher although XDP still forwards"
crash_failed=$(phase_failed)
[ "$crash_failed" -eq 0 ] || fail "dead watcher with XDP attached lost traffic: $(cat "$TMP/load/counts")"
phase_start
t0=$(now_ms)
detach "$D1"
wait_nexthops 1 10 "the guard to withdraw dir1 after XDP went away with the watcher dead" >/dev/null
guard_ms=$(($(now_ms) - t0))
grep -q "every VIP withdrawn" "$TMP/$D1/guard.log" || fail "guard did not log its withdrawal"
sleep 2.5
echo "4: watcher killed: route stayed ($crash_failed failed); XDP detached: the guard withdrew after $guard_ms ms ($(phase_failed) failed, $(phase_broken) broken in that window)"
attach "$D1" 2 td1
start_watcher "$D1" 2 dir1
W1=$WPID
wait_nexthops 2 20 "dir1 announced again after restart" >/dev/null
echo "4: restarted: two nexthops"

# ---- 5. cut dir1's link ----
sleep 1
phase_start
t0=$(now_ms)
ip -n "$D1" link set eth0 down
wait_nexthops 1 $((HOLD + 5)) "dir1 withdrawn after its link was cut" >/dev/null
cut_ms=$(($(now_ms) - t0))
echo "5: link cut: route down to $(via)after $cut_ms ms (hold time $HOLD s)"
ip -n "$D1" link set eth0 up
ip -n "$D1" route replace default via $NET.2.1
wait_nexthops 2 30 "dir1 announced again after its link came back" >/dev/null
echo "5: link back: two nexthops"
sleep 2.5
link_failed=$(phase_failed)

# ---- 6. Consul goes away, then comes back empty ----
# Fail static applies to routes too: both directors still serve, so the
# VIP stays announced by both (two nexthops at every sample) and nothing
# fails, while Consul is dead and after it restarts empty (a dev agent
# keeps nothing: the director's keys are gone, a KV-loss as the watchers
# see it).
hold_nexthops() { # seconds what
    local end=$(($(now_ms) + $1 * 1000))
    while [ "$(now_ms)" -lt $end ]; do
        [ "$(nexthops)" = 2 ] || fail "$2: the route lost a nexthop (router route: '$(ip -n "$RT" route show "$VIP/32")')"
        sleep 0.1
    done
}
phase_start
nsx "$RT" "$CONSUL_DEV" kill "$TMP/consul" >/dev/null
hold_nexthops 10 "Consul dead"
nsx "$RT" "$CONSUL_DEV" restart "$TMP/consul" >/dev/null || fail "Consul did not restart"
hold_nexthops 10 "Consul back empty"
consul_failed=$(phase_failed) consul_broken=$(phase_broken)
echo "6: Consul killed (10 s), then back empty (10 s): both nexthops all along; failed $consul_failed, broken $consul_broken"
[ "$consul_failed" -eq 0 ] && [ "$consul_broken" -eq 0 ] ||
    fail "Consul loss lost traffic: $(cat "$TMP/load/counts")"

touch "$TMP/load/stop"
wait "$LOAD" || true
LOAD=""
echo "load: $(cat "$TMP/load/counts")"
broken=$(count broken)
echo "figures: withdraw ${withdraw_ms} ms, drain failed $drain_failed, crash failed $crash_failed, Consul loss failed $consul_failed, broken $broken (link cut failed $link_failed)"
if [ -n "${FRONTDOOR_BENCH:-}" ]; then
    {
        echo "BENCH frontdoor_withdraw_ms $withdraw_ms"
        echo "BENCH frontdoor_drain_failed $drain_failed"
        echo "BENCH frontdoor_crash_failed $crash_failed"
        echo "BENCH frontdoor_consul_loss_failed $consul_failed"
        echo "BENCH frontdoor_broken_connections $broken"
    } >"$FRONTDOOR_BENCH"
fi
echo "e2e_frontdoor: ok"
