#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of drover-director in network namespaces:
#
#   client --- router --- director (XDP director on eth0, XDP_TX back)
#                 |------ proxy1 (XDP decap on eth0, VIP on lo, TCP server)
#                 |------ proxy2 (same)
#
# Client traffic to the VIP is routed to the director, encapsulated in GUE
# to a proxy, decapsulated there; replies go from the proxy straight back to
# the client (direct return). Then the proxy that owns a long-lived
# connection is set to draining (moved from primary to secondary in every
# row): the connection must survive through second chance, and new
# connections must go to the other proxy.
#
# usage: run.sh /path/to/drover-director /path/to/xdp_pass.bpf.o
# Needs root. Namespace names are unique per run and removed on any exit.
set -euo pipefail
DIRECTOR=${1:?usage: run.sh /path/to/drover-director /path/to/xdp_pass.bpf.o}
XDP_PASS=${2:?usage: run.sh /path/to/drover-director /path/to/xdp_pass.bpf.o}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib/director_netns.sh"

if [ "$(id -u)" != 0 ]; then
    echo "e2e_director: needs root (network namespaces, XDP)" >&2
    exit 77
fi

director_netns_names drv
TMP=$(mktemp -d /tmp/drover-e2e-director.XXXXXX)
PIDS=""
VIP=10.91.100.1
VIP6=fd91:100::1
PORT=8080

cleanup() {
    local rc=$?
    set +e
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ $rc -ne 0 ]; then
        [ -n "${DROVER_E2E_DEBUG:-}" ] && { ip netns exec "$DIR" ethtool -S eth0 >&2; ip netns exec "$RT" ethtool -k td 2>&1 | grep -i gro >&2; ip netns exec "$RT" nstat -a 2>/dev/null | grep -iE "drop|err|InHdr|Forw" >&2; }
        echo "---- failure: logs and counters" >&2
        for f in "$TMP"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 30 "$f" >&2; }; done
        echo "== $DIR director" >&2
        ip netns exec "$DIR" "$DIRECTOR" stats --dev eth0 --pin-root "$TMP/bpffs/$DIR" >&2
        for ns in $P1 $P2; do
            echo "== $ns decap" >&2
            ip netns exec "$ns" "$DIRECTOR" decap stats --dev eth0 --pin-root "$TMP/bpffs/$ns" >&2
        done
    fi
    director_netns_down
    umount "$TMP/bpffs" 2>/dev/null
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT INT TERM

mkdir -p "$TMP/bpffs" "$TMP/state"
mount -t bpf bpf "$TMP/bpffs"
director_netns_up 10.91 "$XDP_PASS" "$VIP" "$VIP6"

gw_mac=$(nsx "$RT" cat /sys/class/net/td/address)
key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
config() { # state-of-proxy1 state-of-proxy2
    cat <<JSON
{"hash_key": "$key", "gue_port": 19523, "source_v4": "10.91.2.2",
 "gateway_mac": "$gw_mac",
 "vips": [{"address": "$VIP", "port": $PORT, "protocol": "tcp"},
          {"address": "$VIP6", "port": $PORT, "protocol": "tcp"}],
 "proxies": [{"address": "10.91.3.2", "state": "$1"},
             {"address": "10.91.4.2", "state": "$2"}]}
JSON
}
config active active >"$TMP/director.json"

# Each namespace stands for a host with its own bpffs: its own pin root.
pin() { echo "--pin-root $TMP/bpffs/$1"; }
nsx "$DIR" "$DIRECTOR" attach --dev eth0 --director-config "$TMP/director.json" $(pin "$DIR")
for ns in $P1 $P2; do nsx "$ns" "$DIRECTOR" decap attach --dev eth0 $(pin "$ns"); done
# A foreign program is never replaced without --force.
if nsx "$P1" "$DIRECTOR" attach --dev eth0 --director-config "$TMP/director.json" $(pin "$P1") \
    2>"$TMP/force.log"; then
    echo "e2e_director: attach over the decap program succeeded without --force" >&2
    exit 1
fi
grep -q "use --force" "$TMP/force.log"

# Started with `ip netns exec` itself (it execs the command), not through
# the nsx function, so $! is the server the cleanup trap kills.
ip netns exec "$P1" python3 "$HERE/tcp_echo.py" proxy1 $PORT >"$TMP/proxy1.log" 2>&1 &
PIDS="$PIDS $!"
ip netns exec "$P2" python3 "$HERE/tcp_echo.py" proxy2 $PORT >"$TMP/proxy2.log" 2>&1 &
PIDS="$PIDS $!"
for i in $(seq 100); do
    grep -q listening "$TMP/proxy1.log" && grep -q listening "$TMP/proxy2.log" && break
    sleep 0.05
done

# IPv6 through the director (inner IPv6 in outer IPv4 GUE), replies direct.
v6reply=$(director_netns_ask 30 "$VIP6" $PORT "v6 hello") ||
    { echo "e2e_director: no answer to IPv6 through the director" >&2; exit 1; }
case "$v6reply" in
proxy1\ v6\ hello | proxy2\ v6\ hello) echo "IPv6: answered by ${v6reply%% *}" ;;
*) echo "e2e_director: bad IPv6 reply '$v6reply'" >&2; exit 1 ;;
esac

timeout 90 ip netns exec "$CLI" python3 "$HERE/client.py" "$VIP" $PORT "$TMP/state" \
    >"$TMP/client.log" 2>&1 &
client=$!
PIDS="$PIDS $client"
if ! director_netns_wait_file "$TMP/state/owner" "$client"; then
    echo "e2e_director: client never got an answer through the director" >&2
    exit 1
fi
owner=$(cat "$TMP/state/owner")
echo "long connection owned by $owner"

# Move the owner from primary to secondary in every row.
if [ "$owner" = proxy1 ]; then
    config draining active >"$TMP/director.json"; old=$P1; new=$P2
else
    config active draining >"$TMP/director.json"; old=$P2; new=$P1
fi
nsx "$DIR" "$DIRECTOR" apply --dev eth0 --director-config "$TMP/director.json" $(pin "$DIR")
touch "$TMP/state/go"

if ! wait "$client"; then
    echo "e2e_director: client failed" >&2
    cat "$TMP/client.log" >&2
    exit 1
fi
cat "$TMP/client.log"

stat() { # ns command-prefix counter
    nsx "$1" "$DIRECTOR" $2 --dev eth0 $(pin "$1") | awk -v k="$3" '$1 == k { print $2 }'
}
sc=$(stat "$new" "decap stats" second_chance)
scp=$(stat "$new" "decap stats" second_chance_pass)
done_=$(stat "$old" "decap stats" decap_hops_exhausted)
enc=$(stat "$DIR" stats encap_v4)
echo "director encap_v4=$enc; new primary second_chance=$sc (+$scp via stack); old owner hops_exhausted=$done_"
[ "$enc" -gt 0 ] && [ $((sc + scp)) -gt 0 ] && [ "$done_" -gt 0 ]

nsx "$DIR" "$DIRECTOR" detach --dev eth0 $(pin "$DIR")
for ns in $P1 $P2; do nsx "$ns" "$DIRECTOR" decap detach --dev eth0 $(pin "$ns"); done
echo "e2e_director: ok"
