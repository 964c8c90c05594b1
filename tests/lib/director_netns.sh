# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# director_netns.sh: the network-namespace topology of the director tests
# (tests/e2e/director/run.sh, tests/integration/director/run.sh), sourced
# by them (bash, root); its building blocks (netns_link, netns_forwarding)
# also wire the fleet (scripts/fleet/lib.sh):
#
#   client --- router --- director
#                 |------ proxy1
#                 |------ proxy2
#
# Every host's eth0 is NET.N.2/24 behind the router's NET.N.1 (client 1,
# director 2, proxy1 3, proxy2 4); with an IPv6 VIP also fdX:N::2/64 for
# NET = 10.X. The VIP is routed to the director and sits on the proxies'
# loopback, so decapsulated packets are accepted there. The router's veth
# ends towards director and proxies carry an XDP program because XDP_TX
# (director, decap) needs NAPI on the peer.

# nsx NS CMD...: run CMD in namespace NS. (Not for background processes
# whose pid is needed: `ip netns exec` them directly, so $! is the process.)
nsx() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# director_netns_names TAG: set CLI RT DIR P1 P2 and NSS (all five), names
# unique per run.
director_netns_names() {
    local id
    id=$(printf '%x%04x' $$ $((RANDOM)))
    CLI=$1-cli-$id RT=$1-rt-$id DIR=$1-dir-$id P1=$1-p1-$id P2=$1-p2-$id
    NSS="$CLI $RT $DIR $P1 $P2"
}

# netns_link ROUTER-NS ROUTER-DEV NS NET INDEX [V6]: one host behind the
# router: veth ROUTER-DEV <-> NS's eth0, NET.INDEX.1/24 on the router's end,
# NET.INDEX.2/24 on the host's with its default route through the router;
# with V6 (an fdXX prefix) also V6:INDEX::1/64 and ::2/64.
netns_link() {
    local rt=$1 dev=$2 ns=$3 net=$4 i=$5 v6=${6:-}
    ip -n "$rt" link add "$dev" type veth peer name eth0 netns "$ns"
    ip -n "$rt" addr add "$net.$i.1/24" dev "$dev"
    ip -n "$ns" addr add "$net.$i.2/24" dev eth0
    ip -n "$rt" link set "$dev" up
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$net.$i.1"
    if [ -n "$v6" ]; then
        ip -n "$rt" addr add "$v6:$i::1/64" dev "$dev" nodad
        ip -n "$ns" addr add "$v6:$i::2/64" dev eth0 nodad
        ip -n "$ns" -6 route add default via "$v6:$i::1"
    fi
}

# netns_forwarding NS [v6]: NS forwards (IPv6 too with v6), with reverse
# path filtering off on every device: with direct return a flow's packets
# come and go by different paths.
netns_forwarding() {
    local ns=$1 dev
    nsx "$ns" sysctl -qw net.ipv4.ip_forward=1
    [ -z "${2:-}" ] || nsx "$ns" sysctl -qw net.ipv6.conf.all.forwarding=1
    for dev in $(nsx "$ns" ls /sys/class/net) all default; do
        nsx "$ns" sysctl -qw "net.ipv4.conf.$dev.rp_filter=0"
    done
}

# One host behind the router: ns router-dev subnet-index.
_director_netns_link() {
    netns_link "$RT" "$2" "$1" "$_DN_NET" "$3" "$_DN_V6"
    [ "$1" = "$CLI" ] || ip -n "$RT" link set dev "$2" xdp obj "$_DN_XDP_PASS" sec xdp
}

# director_netns_up NET XDP_PASS VIP [VIP6]: create the namespaces named by
# director_netns_names and wire the topology. NET is "10.X"; XDP_PASS the
# object of tests/e2e/director/xdp_pass.bpf.c.
director_netns_up() {
    local ns vip=$3 vip6=${4:-}
    _DN_NET=$1 _DN_XDP_PASS=$2 _DN_V6=
    [ -z "$vip6" ] || _DN_V6=fd${1#10.}
    for ns in $NSS; do
        ip netns add "$ns"
        nsx "$ns" ip link set lo up
    done
    _director_netns_link "$CLI" tc 1
    _director_netns_link "$DIR" td 2
    _director_netns_link "$P1" t1 3
    _director_netns_link "$P2" t2 4
    # Room for the GUE overhead: the client's MTU is smaller than the path.
    ip -n "$CLI" link set eth0 mtu 1400
    ip -n "$RT" link set tc mtu 1400
    # veth leaves TCP checksums to "hardware" (CHECKSUM_PARTIAL); once the
    # director rebuilds the packet as a new frame nobody would fill them in.
    # As on a real NIC the client's own checksums are complete: compute them.
    nsx "$CLI" ethtool -K eth0 tx off >/dev/null
    for ns in $NSS; do
        netns_forwarding "$ns" "$_DN_V6"
    done
    ip -n "$RT" route add "$vip/32" via "$1.2.2"
    [ -z "$vip6" ] || ip -n "$RT" -6 route add "$vip6/128" via "$_DN_V6:2::2"
    for ns in $P1 $P2; do
        ip -n "$ns" addr add "$vip/32" dev lo
        [ -z "$vip6" ] || ip -n "$ns" addr add "$vip6/128" dev lo nodad
    done
}

# director_netns_down: remove the namespaces (best effort, for cleanup traps).
director_netns_down() {
    local ns
    for ns in $NSS; do ip netns del "$ns" 2>/dev/null; done
    return 0
}

# director_netns_ask SECONDS ADDR PORT TEXT: one new connection from the
# client to ADDR:PORT sending TEXT; prints the reply line (tcp_echo.py
# answers "<name> <text>"). Fails after SECONDS.
director_netns_ask() {
    timeout "$1" ip netns exec "$CLI" python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[4]))
s.sendall(sys.argv[3].encode() + b"\n")
print(s.makefile("rb").readline().decode().strip())' "$2" "$3" "$4" "$(($1 / 2))"
}

# director_netns_wait_file FILE PID: wait up to 30 s for FILE to appear
# while PID runs; 0 once it exists.
director_netns_wait_file() {
    local _
    for _ in $(seq 600); do
        [ -f "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.05
    done
    [ -f "$1" ]
}
