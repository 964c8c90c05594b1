# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# scripts/fleet/lib.sh: the drover fleet on one machine, in network
# namespaces (sourced by scripts/fleet/scenario.sh, the demo and the e2e
# test). Owns the topology, starting and stopping every component, bounded
# waits, and reading live figures from HAProxy, the load generator and the
# director.
#
#   client --- router --- director (drover-director, XDP)
#                |------- proxy-1, proxy-2 (decap XDP, VIP on lo, HAProxy
#                |         master-worker per service run by drover-watcher,
#                |         drover-agent-checker)
#                |------- node-1..4 ("pods": HTTP servers on the NodePorts)
#
# Addresses: 10.93.N.0/24 per router link (router .1, host .2); VIP
# 10.93.100.1 routed by the router to the director; replies go from the
# proxies straight back to the client (direct return).
# With FLEET_FRONTDOOR=1 (scenario.sh --frontdoor, the demo) there are two
# directors, director and director-2 (link 5), each with BIRD 2 and its
# drover-watcher's front door announcing the VIP; the router runs BIRD 2
# with eBGP to both, merge paths on and the L4 multipath hash, so the VIP
# route has two nexthops (ECMP) instead of the static one. Consul, the
# Kubernetes API fixture, drover-exporter and droverctl run on the host's
# loopback (127.0.0.1, free ports); hosts that run a drover-watcher (the
# proxies) reach Consul at 127.0.0.1:8500 in their own namespace through a
# unix-socket relay (fleet_consul_bridge). Nothing is routed anywhere else.
#
# Everything started is recorded in $FLEET_STATE (pids, namespaces, bpffs
# mount), so fleet_down works from the same shell, from a trap, or later
# on a --keep'd fleet (scripts/fleet/down.sh STATE-DIR).

# netns_link, netns_forwarding: the director tests' topology blocks
. "$FLEET_SRC/tests/lib/director_netns.sh"
# pid_alive: exists and is not a zombie
. "$FLEET_SRC/tests/lib/pid_alive.sh"

FLEET_VIP=10.93.100.1
FLEET_GUE_PORT=19523
FLEET_CLUSTER=demo          # kube cluster name in KV
FLEET_HAPROXY_CLUSTER=edge  # haproxy/<cluster>/services
FLEET_NODE_PORT_WEB=30080
FLEET_NODE_PORT_API=30081
FLEET_SERVICES="web api"    # HAProxy services, one master-worker each per proxy
FLEET_PORT_web=80           # VIP ports
FLEET_PORT_api=8080
FLEET_FRONTDOOR=${FLEET_FRONTDOOR:-0}

fleet_die() { echo "fleet: $*" >&2; exit 1; }

# Narration: steps in bold, figures indented.
fleet_say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fleet_info() { printf '   %s\n' "$*"; }

# fleet_wait DESC TIMEOUT-SECONDS CMD...: poll CMD every 0.1 s until it
# succeeds; fail naming DESC after the timeout. Every wait is bounded.
fleet_wait() {
    local desc=$1 timeout=$2 end
    shift 2
    end=$(($(date +%s) + timeout))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || fleet_die "timed out after ${timeout}s waiting for: $desc"
        sleep 0.1
    done
}

# The test library (tests/lib/drover_testlib.py) on the command line: free
# ports, HAProxy's stats and master sockets.
fleet_testlib() { python3 "$FLEET_SRC/tests/lib/drover_testlib.py" "$@"; }

fleet_free_port() { fleet_testlib free-ports 1; }

# ns NAME: the namespace of a role (client, router, director, proxy-1...)
fleet_ns() { echo "drvf-$1-$FLEET_ID"; }
fleet_nsx() { local ns; ns=$(fleet_ns "$1"); shift; ip netns exec "$ns" "$@"; }

# fleet_bg NAME CMD...: start CMD in the background, log to NAME.log,
# record its pid.
fleet_bg() {
    local name=$1
    shift
    setsid "$@" >"$FLEET_STATE/$name.log" 2>&1 </dev/null &
    echo "$! $name $(fleet_starttime $!)" >>"$FLEET_STATE/pids"
}
fleet_pid() { awk -v n="$1" '$2 == n { p = $1 } END { print p }' "$FLEET_STATE/pids"; }

# fleet_proc_stat PID N: field N of /proc/PID/stat counted from the state
# letter (1: state, 2: parent, 20: start time), read after the last ')'
# (the command name may hold spaces and ')'); nothing if PID is gone
fleet_proc_stat() {
    sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk -v n="$2" '{ print $n }'
}

# Start time of a process (clock ticks since boot, /proc/PID/stat field 22):
# with the pid it identifies the process, so a stale pids file (a fleet
# left by a crashed run, a reboot) never makes us signal someone else's.
fleet_starttime() { fleet_proc_stat "$1" 20; }

# fleet_init STATE-DIR: a fresh state dir and a unique id for this run
fleet_init() {
    FLEET_STATE=$1
    mkdir -p "$FLEET_STATE"
    FLEET_ID=$(printf '%x%04x' $$ $((RANDOM)))
    echo "$FLEET_ID" >"$FLEET_STATE/id"
    : >"$FLEET_STATE/pids"
    : >"$FLEET_STATE/namespaces"
}

# fleet_down STATE-DIR: stop everything recorded there, remove it.
# Idempotent, never fails.
fleet_down() {
    local st=$1 pid name ns
    [ -d "$st" ] || return 0
    # best effort throughout, whatever the caller's errexit: some processes
    # have ended by themselves, some parts were never started
    local -
    set +e
    if [ -f "$st/pids" ]; then
        local start sig
        for sig in TERM KILL; do
            while read -r pid name start; do
                if [ -z "$start" ] || [ "$(fleet_starttime "$pid")" != "$start" ]; then continue; fi
                kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null
            done <"$st/pids"
            [ "$sig" = KILL ] || sleep 0.3
        done
    fi
    [ -d "$st/kube" ] && "$FLEET_SRC/tests/kube/kube-fixture.sh" stop "$st/kube" >/dev/null 2>&1
    [ -d "$st/consul" ] && "$FLEET_SRC/tests/lib/consul-dev.sh" stop "$st/consul" >/dev/null 2>&1
    if [ -f "$st/namespaces" ]; then
        while read -r ns; do
            # processes left inside our own namespaces (HAProxy workers)
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
            ip netns del "$ns" 2>/dev/null
        done <"$st/namespaces"
    fi
    umount "$st/bpffs" 2>/dev/null
    rm -rf "$st"
    return 0
}

# ---- topology ----

# link ROLE INDEX: veth router:rN <-> ROLE:eth0, 10.93.INDEX.0/24
fleet_link() {
    netns_link "$(fleet_ns router)" "r$2" "$(fleet_ns "$1")" 10.93 "$2"
}

# The director hosts and their router link index
fleet_directors() { echo director; [ "$FLEET_FRONTDOOR" != 1 ] || echo director-2; }
fleet_director_index() { case $1 in director) echo 2 ;; director-2) echo 5 ;; esac; }

fleet_topology() { # XDP_PASS_OBJECT
    local role ns dev
    FLEET_ROLES="client router $(fleet_directors | tr '\n' ' ')proxy-1 proxy-2 node-1 node-2 node-3 node-4"
    for role in $FLEET_ROLES; do
        ns=$(fleet_ns "$role")
        ip netns add "$ns"
        echo "$ns" >>"$FLEET_STATE/namespaces"
        ip -n "$ns" link set lo up
    done
    fleet_link client 1
    fleet_link director 2
    fleet_link proxy-1 3
    fleet_link proxy-2 4
    fleet_link node-1 11
    fleet_link node-2 12
    fleet_link node-3 13
    fleet_link node-4 14
    [ "$FLEET_FRONTDOOR" != 1 ] || fleet_link director-2 5
    # XDP_TX from the director and the proxies' decap program needs NAPI
    # on the router's end of their links: an XDP program there.
    for dev in r2 r3 r4 $([ "$FLEET_FRONTDOOR" != 1 ] || echo r5); do
        ip -n "$(fleet_ns router)" link set dev "$dev" xdp obj "$1" sec xdp
    done
    # Room for the GUE header: the client's MTU is below the path's.
    ip -n "$(fleet_ns client)" link set eth0 mtu 1400
    ip -n "$(fleet_ns router)" link set r1 mtu 1400
    # A rebuilt frame carries the client's checksums as they are: have the
    # client compute them (veth would leave them to "hardware").
    fleet_nsx client ethtool -K eth0 tx off >/dev/null
    for role in $FLEET_ROLES; do
        netns_forwarding "$(fleet_ns "$role")"
    done
    if [ "$FLEET_FRONTDOOR" = 1 ]; then
        # ECMP flows spread by source and destination port too
        fleet_nsx router sysctl -qw net.ipv4.fib_multipath_hash_policy=1
    else
        ip -n "$(fleet_ns router)" route add "$FLEET_VIP/32" via 10.93.2.2
    fi
    for role in proxy-1 proxy-2; do
        ip -n "$(fleet_ns "$role")" addr add "$FLEET_VIP/32" dev lo
    done
    mkdir -p "$FLEET_STATE/bpffs"
    mount -t bpf bpf "$FLEET_STATE/bpffs"
}

# node address of node-N
fleet_node_ip() { echo "10.93.$((10 + ${1#node-})).2"; }
fleet_proxy_ip() { echo "10.93.$((2 + ${1#proxy-})).2"; }

# ---- Consul, kube fixture, pods ----

fleet_consul() {
    "$FLEET_SRC/tests/lib/consul-dev.sh" start "$FLEET_STATE/consul" >/dev/null
    FLEET_CONSUL=$(cat "$FLEET_STATE/consul/addr")
}

# fleet_consul_bridge ROLE: Consul at 127.0.0.1:8500 inside ROLE's
# namespace, relayed over a unix socket to the agent on the host's
# loopback (socat on both ends; no address outside the namespaces).
fleet_consul_bridge() {
    local sock="$FLEET_STATE/consul-$1.sock"
    fleet_bg "consul-bridge-host-$1" socat "UNIX-LISTEN:$sock,fork,mode=600" \
        "TCP:127.0.0.1:${FLEET_CONSUL##*:}"
    fleet_wait "consul bridge socket for $1" 10 test -S "$sock"
    fleet_bg "consul-bridge-$1" ip netns exec "$(fleet_ns "$1")" \
        socat TCP-LISTEN:8500,bind=127.0.0.1,fork,reuseaddr "UNIX-CONNECT:$sock"
    fleet_wait "Consul reachable from $1" 10 fleet_nsx "$1" curl -sf http://127.0.0.1:8500/v1/status/leader
}

fleet_kv_put() { curl -sf -X PUT --data-binary "$2" "$FLEET_CONSUL/v1/kv/drover/v1/$1" >/dev/null; }
fleet_kv_get() { curl -sf "$FLEET_CONSUL/v1/kv/drover/v1/$1?raw"; }
# The key (below the root) the exporter writes node NODE of CLUSTER to: its
# shard (docs/kv-schema.md; tests/lib/kv_schema.py computes it as
# common/kv_key.c does). usage: fleet_node_key CLUSTER NODE
fleet_node_key() {
    python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import kv_schema; print(kv_schema.node_key(sys.argv[2], sys.argv[3]))' \
        "$FLEET_SRC/tests/lib" "$1" "$2"
}

fleet_kube() { "$FLEET_SRC/tests/kube/kube-fixture.sh" "$@"; }

fleet_kube_start() {
    fleet_kube start "$FLEET_STATE/kube" --seed empty --max-lifetime 7200 >/dev/null
    local n
    for n in 1 2 3; do fleet_kube_add_node "node-$n"; done
    local svc port
    for svc in web api; do
        [ "$svc" = web ] && port=$FLEET_NODE_PORT_WEB || port=$FLEET_NODE_PORT_API
        fleet_kube ctl "$FLEET_STATE/kube" add_service "{\"namespace\": \"shop\", \"name\": \"$svc\",
            \"type\": \"NodePort\", \"annotations\": {\"drover.io/exported\": \"true\"},
            \"ports\": [{\"name\": \"http\", \"port\": 80, \"nodePort\": $port}]}" >/dev/null
    done
}

fleet_kube_add_node() {
    fleet_kube ctl "$FLEET_STATE/kube" add_node \
        "{\"name\": \"$1\", \"ip\": \"$(fleet_node_ip "$1")\", \"ready\": true}" >/dev/null
}

fleet_pod() { # node-N
    fleet_bg "pod-$1" ip netns exec "$(fleet_ns "$1")" python3 "$FLEET_SRC/scripts/fleet/pod.py" \
        "$1" "$FLEET_NODE_PORT_WEB" "$FLEET_NODE_PORT_API"
    fleet_wait "pod on $1 listening" 10 grep -q listening "$FLEET_STATE/pod-$1.log"
}

# ---- exporter ----

fleet_exporter() { # N
    local port
    port=$(fleet_free_port)
    echo "$port" >"$FLEET_STATE/exporter-$1.metrics-port"
    fleet_bg "exporter-$1" "$FLEET_BIN_EXPORTER" --kube-cluster "$FLEET_CLUSTER" \
        --consul-addr "$FLEET_CONSUL" --kube-api "$(cat "$FLEET_STATE/kube/addr")" \
        --kube-token-file "$FLEET_STATE/kube/token" --holder-name "exporter-$1" \
        --metrics-addr "127.0.0.1:$port" --leader-ttl 20s --leader-lock-delay 0s
}

fleet_exporter_metric() { # N NAME
    curl -sf "http://127.0.0.1:$(cat "$FLEET_STATE/exporter-$1.metrics-port")/metrics" |
        awk -v k="$2" '$1 == k { print $2 }'
}

# ---- HAProxy service definitions (what an operator writes into KV) ----

fleet_haproxy_services() {
    local svc bind
    for svc in $FLEET_SERVICES; do
        # api listens on every address of the proxy host (the VIP for
        # clients and the host address), web on the VIP only
        [ "$svc" = api ] && bind=0.0.0.0 || bind=$FLEET_VIP
        fleet_kv_put "haproxy/$FLEET_HAPROXY_CLUSTER/services/$svc" "{\"template\": \"http\",
  \"frontends\": [{\"name\": \"fe_$svc\", \"bind\": [\"$bind:$(eval echo "\$FLEET_PORT_$svc")\"],
                   \"default_backend\": \"be_$svc\"}],
  \"backends\": [{\"name\": \"be_$svc\", \"balance\": \"roundrobin\", \"slots\": 6,
                  \"check\": {\"type\": \"http\", \"path\": \"/\", \"interval\": \"500ms\"},
                  \"kube\": [{\"cluster\": \"$FLEET_CLUSTER\", \"namespace\": \"shop\",
                              \"service\": \"$svc\", \"port\": \"http\"}]}]}"
    done
}

# ---- proxy host: agent-checker, watcher, HAProxy, decap ----

# The proxy host's drover-watcher runs its HAProxy instances itself
# (--haproxy-run: started from the installed config and server-state file,
# started again within ~0.5 s when one dies, probed every
# FLEET_HAPROXY_PROBE_MS) and serves /metrics and /readyz on the host's
# address, port FLEET_WATCHER_PORT: /readyz is the director's health check of the host
# (200 only while every HAProxy service of the host is up).
# FLEET_HAPROXY_BIN: the HAProxy binary the proxies' watchers run and check
# with (--haproxy-bin; a fault test's wrapper that adds a test-only config
# file, tests/faults/haproxy_hang.sh; plain haproxy otherwise).
# FLEET_HAPROXY_PROBE_MS: their --haproxy-probe-interval (fault tests
# derive the time a stuck worker takes to be judged down from it).
FLEET_WATCHER_PORT=9108
FLEET_HAPROXY_BIN=${FLEET_HAPROXY_BIN:-haproxy}
FLEET_HAPROXY_PROBE_MS=100

fleet_proxy() { # proxy-N
    local p=$1 d="$FLEET_STATE/$1" wport=$FLEET_WATCHER_PORT aport svc
    mkdir -p "$d/cfg"
    aport=$(fleet_free_port)
    echo "$wport" >"$d/metrics-port"
    fleet_bg "$p-agent-checker" ip netns exec "$(fleet_ns "$p")" "$FLEET_BIN_AGENT" \
        --listen "127.0.0.1:$aport" --state-file "$d/agent.json" --metrics-addr "" \
        --poll-interval 1s
    fleet_consul_bridge "$p"
    fleet_bg "$p-watcher" ip netns exec "$(fleet_ns "$p")" "$FLEET_BIN_WATCHER" \
        --consul-addr http://127.0.0.1:8500 \
        --haproxy-cluster "$FLEET_HAPROXY_CLUSTER" --kube-cluster "$FLEET_CLUSTER" \
        --template-dir "$FLEET_SRC/haproxy-templates" --config-dir "$d/cfg" \
        --haproxy-bin "$FLEET_HAPROXY_BIN" \
        --haproxy-master-socket "$d/{service}.master" --haproxy-stats-socket "$d/{service}.sock" \
        --haproxy-state-file "$d/{service}.state" --agent-state-file "$d/agent.json" \
        --agent-port "$aport" --agent-interval 500ms --snapshot-file "$d/snapshot.pb" \
        --metrics-addr "0.0.0.0:$wport" --wait-min 100ms --wait-max 1s \
        --haproxy-maxconn 2000 --consul-wait 30s \
        --haproxy-run --haproxy-probe-interval "${FLEET_HAPROXY_PROBE_MS}ms" --host-name "$p"
    for svc in $FLEET_SERVICES; do
        fleet_wait "$p: watcher renders $svc.cfg and starts its HAProxy (stats socket answers)" 30 \
            fleet_hap "$p" "$svc" "show info"
    done
    fleet_nsx "$p" "$FLEET_BIN_DIRECTOR" decap attach --dev eth0 \
        --pin-root "$FLEET_STATE/bpffs/$p" >/dev/null 2>&1
}

# fleet_hap PROXY SERVICE COMMAND: HAProxy runtime API (stats socket);
# HAProxy closes the connection after the answer (at most 5 s)
fleet_hap() {
    fleet_testlib haproxy "$FLEET_STATE/$1/$2.sock" "$3"
}

# fleet_servers PROXY SERVICE: "server addr status weight agent-text" of the
# occupied slots of be_SERVICE (HAProxy's own view, `show stat`)
fleet_servers() {
    fleet_testlib haproxy-servers "$FLEET_STATE/$1/$2.sock" "be_$2"
}

# fleet_fe_sessions PROXY SERVICE: cumulative client connections of fe_SERVICE
fleet_fe_sessions() {
    fleet_hap "$1" "$2" "show stat" | awk -F, -v fe="fe_$2" '$1 == fe && $2 == "FRONTEND" { print $8 }'
}

# fleet_reloads PROXY SERVICE: the master's reload counter (master CLI)
fleet_reloads() {
    fleet_testlib haproxy-reloads "$FLEET_STATE/$1/$2.master"
}

fleet_watcher_metric() { # PROXY NAME
    fleet_nsx "$1" curl -sf "http://127.0.0.1:$(cat "$FLEET_STATE/$1/metrics-port")/metrics" |
        awk -v k="$2" '$1 == k { print $2 }'
}

# ---- director ----

fleet_director_config() { # STATE-OF-proxy-1 STATE-OF-proxy-2 [DIRECTOR]
    local d=${3:-director} i
    i=$(fleet_director_index "$d")
    cat >"$FLEET_STATE/$d.json" <<JSON
{"hash_key": "$FLEET_HASH_KEY", "gue_port": $FLEET_GUE_PORT, "source_v4": "10.93.$i.2",
 "gateway_mac": "$(fleet_nsx router cat "/sys/class/net/r$i/address")",
 "vips": [{"address": "$FLEET_VIP", "port": $FLEET_PORT_web, "protocol": "tcp"},
          {"address": "$FLEET_VIP", "port": $FLEET_PORT_api, "protocol": "tcp"}],
 "proxies": [{"name": "proxy-1", "address": "$(fleet_proxy_ip proxy-1)", "state": "$1"},
             {"name": "proxy-2", "address": "$(fleet_proxy_ip proxy-2)", "state": "$2"}]}
JSON
}

fleet_director() {
    local d
    FLEET_HASH_KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    echo "$FLEET_HASH_KEY" >"$FLEET_STATE/hash-key"
    for d in $(fleet_directors); do fleet_director_attach "$d"; done
}

# fleet_director_attach DIRECTOR: drover-director's XDP program (again)
fleet_director_attach() {
    FLEET_HASH_KEY=$(cat "$FLEET_STATE/hash-key")
    fleet_director_config active active "$1"
    fleet_nsx "$1" "$FLEET_BIN_DIRECTOR" attach --dev eth0 --director-config "$FLEET_STATE/$1.json" \
        --pin-root "$FLEET_STATE/bpffs/$1" >/dev/null 2>&1
}

fleet_director_detach() { # DIRECTOR
    fleet_nsx "$1" "$FLEET_BIN_DIRECTOR" detach --dev eth0 --pin-root "$FLEET_STATE/bpffs/$1" >/dev/null 2>&1
}

fleet_director_apply() { # STATE-OF-proxy-1 STATE-OF-proxy-2
    FLEET_HASH_KEY=$(cat "$FLEET_STATE/hash-key")
    fleet_director_config "$1" "$2"
    fleet_nsx director "$FLEET_BIN_DIRECTOR" apply --dev eth0 --director-config "$FLEET_STATE/director.json" \
        --pin-root "$FLEET_STATE/bpffs/director" >/dev/null 2>&1
}

# ---- director-mode drover-watcher ----

FLEET_DIRECTOR_CLUSTER=demo-dir

# Does this drover-watcher have the director side?
fleet_has_director_watcher() {
    # read the whole help first: grep -q leaving a pipe early is SIGPIPE,
    # a failure under pipefail
    local help
    help=$("$FLEET_BIN_WATCHER" director run --help 2>&1) || true
    grep -q -- --director-cluster <<<"$help"
}

# What an operator writes once for the director cluster: the flow hash key
# (the one drover-director was attached with, so the table does not move),
# the VIP, both proxies with a health check on their watcher's /readyz
# (every HAProxy service of the host up, docs/director-watcher.md).
# max_moved_share 1: with two proxies any state change moves half the rows.
fleet_director_kv() {
    local d="director/$FLEET_DIRECTOR_CLUSTER" p
    fleet_kv_put "$d/config" "{\"hash_key\": \"$(cat "$FLEET_STATE/hash-key")\",
        \"gue_port\": $FLEET_GUE_PORT, \"max_moved_share\": 1}"
    fleet_kv_put "$d/vips/shop" "{\"address\": \"$FLEET_VIP\",
        \"ports\": [$FLEET_PORT_web, $FLEET_PORT_api], \"protocol\": \"tcp\"}"
    for p in proxy-1 proxy-2; do
        fleet_kv_put "$d/proxies/$p" "{\"address\": \"$(fleet_proxy_ip "$p")\", \"state\": \"active\",
            \"health\": {\"port\": $FLEET_WATCHER_PORT, \"path\": \"/readyz\"}}"
    done
}

fleet_director_watcher() {
    local d
    for d in $(fleet_directors); do
        mkdir -p "$FLEET_STATE/$d"
        fleet_consul_bridge "$d"
        fleet_director_watcher_start "$d"
    done
}

# The director watcher's health options (fault tests derive their bounds
# from them: a proxy that stops answering is judged down within
# FALL x INTERVAL + TIMEOUT, one that answers again is back within
# RISE x INTERVAL)
FLEET_HEALTH_INTERVAL_MS=500
FLEET_HEALTH_TIMEOUT_MS=400
FLEET_HEALTH_RISE=2
FLEET_HEALTH_FALL=2

# fleet_director_watcher_start [DIRECTOR]: its drover-watcher (again, after
# it died: the Consul bridge stays); with FLEET_FRONTDOOR=1 its front door
# announces the VIP through the host's BIRD (rounds of 200 ms, rise and
# fall 2, graceful shutdown 1.5 s before a drained host withdraws)
fleet_director_watcher_start() {
    local d=${1:-director} fd=()
    if [ "$FLEET_FRONTDOOR" = 1 ]; then
        fd=(--bird-socket "$FLEET_STATE/$d/bird.ctl" --bird-include "$FLEET_STATE/$d/drover-vips.conf"
            --frontdoor-state "$FLEET_STATE/$d/frontdoor.json"
            --frontdoor-interval 200ms --frontdoor-rise 2 --frontdoor-fall 2
            --frontdoor-drain-withdraw 1500ms)
    fi
    fleet_bg "$([ "$d" = director ] && echo director-watcher || echo "$d-watcher")" \
        ip netns exec "$(fleet_ns "$d")" "$FLEET_BIN_WATCHER" director run \
        --director-cluster "$FLEET_DIRECTOR_CLUSTER" --dev eth0 --consul-addr http://127.0.0.1:8500 \
        --pin-root "$FLEET_STATE/bpffs/$d" \
        --director-snapshot-file "$FLEET_STATE/$d/snapshot.pb" \
        --health-interval "${FLEET_HEALTH_INTERVAL_MS}ms" --health-timeout "${FLEET_HEALTH_TIMEOUT_MS}ms" \
        --health-rise "$FLEET_HEALTH_RISE" --health-fall "$FLEET_HEALTH_FALL" \
        --verify-interval 2s --metrics-addr 127.0.0.1:9109 --host-name "$d" "${fd[@]}"
}

# ---- the front door (FLEET_FRONTDOOR=1): BIRD 2 on the router and the directors ----

# The router: eBGP to both directors (AS 65001) from AS 65000, every route
# into the kernel with merge paths on (ECMP), graceful shutdown (RFC 8326:
# community 65535:0) least preferred. Each director: drover's include file
# (protocol static drover_vips, written by its watcher) exported with next
# hop self. Hold time 3 s.
fleet_frontdoor_bird() {
    local d i
    mkdir -p "$FLEET_STATE/router"
    {
        echo "router id 10.93.1.1;"
        echo "protocol device { scan time 1; }"
        echo "protocol kernel { ipv4 { import none; export all; }; merge paths on; }"
        echo "template bgp director {"
        echo "    local as 65000; hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2;"
        echo "    ipv4 { import filter { if (65535, 0) ~ bgp_community then bgp_local_pref = 0; accept; }; export none; };"
        echo "}"
        for d in $(fleet_directors); do
            i=$(fleet_director_index "$d")
            echo "protocol bgp bgp_${d//-/_} from director { neighbor 10.93.$i.2 as 65001; }"
        done
    } >"$FLEET_STATE/router/bird.conf"
    fleet_nsx router bird -c "$FLEET_STATE/router/bird.conf" -s "$FLEET_STATE/router/bird.ctl" \
        -P "$FLEET_STATE/router/bird.pid" || fleet_die "BIRD did not start on the router"
    for d in $(fleet_directors); do
        i=$(fleet_director_index "$d")
        mkdir -p "$FLEET_STATE/$d"
        : >"$FLEET_STATE/$d/drover-vips.conf"
        cat >"$FLEET_STATE/$d/bird.conf" <<BIRD
router id 10.93.$i.2;
protocol device { scan time 1; }
include "$FLEET_STATE/$d/drover-vips.conf";
protocol bgp uplink {
    local 10.93.$i.2 as 65001; neighbor 10.93.$i.1 as 65000;
    hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2;
    ipv4 { import none; export where proto = "drover_vips"; next hop self; };
}
BIRD
        fleet_nsx "$d" bird -c "$FLEET_STATE/$d/bird.conf" -s "$FLEET_STATE/$d/bird.ctl" \
            -P "$FLEET_STATE/$d/bird.pid" || fleet_die "BIRD did not start on $d"
    done
}

# fleet_vip_nexthops: how many nexthops the router's route to the VIP has
fleet_vip_nexthops() {
    local r
    r=$(ip -n "$(fleet_ns router)" route show "$FLEET_VIP/32")
    if [ -z "$r" ]; then echo 0; elif grep -q nexthop <<<"$r"; then grep -c nexthop <<<"$r"; else echo 1; fi
}
fleet_vip_nexthops_are() { [ "$(fleet_vip_nexthops)" = "$1" ]; }
fleet_vip_via() { ip -n "$(fleet_ns router)" route show "$FLEET_VIP/32" | grep -o "via [0-9.]*" | tr '\n' ' '; }

fleet_director_status() {
    fleet_nsx director "$FLEET_BIN_WATCHER" director status --dev eth0 \
        --pin-root "$FLEET_STATE/bpffs/director" --director-snapshot-file "$FLEET_STATE/director/snapshot.pb"
}

# fleet_director_state_is PROXY STATE: the watcher applied STATE for PROXY
# (in the maps: in_sync) and the proxy is healthy
fleet_director_state_is() {
    local st
    st=$(fleet_director_status) || return 1
    grep -q "^in_sync yes" <<<"$st" &&
        awk -v h="$1" -v s="$2" '$1 == h && $3 == s && $4 == "up" { f = 1 } END { exit !f }' <<<"$st"
}

fleet_director_stats() { # [DIRECTOR]
    local d=${1:-director}
    fleet_nsx "$d" "$FLEET_BIN_DIRECTOR" stats --dev eth0 --pin-root "$FLEET_STATE/bpffs/$d"
}

fleet_decap_stats() { # PROXY
    fleet_nsx "$1" "$FLEET_BIN_DIRECTOR" decap stats --dev eth0 --pin-root "$FLEET_STATE/bpffs/$1"
}

# ---- client ----

# fleet_get PORT: one request from the client to the VIP; prints the node
fleet_get() {
    fleet_nsx client curl -sf --max-time 3 "http://$FLEET_VIP:$1/"
}

fleet_load_start() { # NAME PORT
    mkdir -p "$FLEET_STATE/$1"
    rm -f "$FLEET_STATE/$1/stop" "$FLEET_STATE/$1/counts"
    fleet_bg "$1" ip netns exec "$(fleet_ns client)" python3 "$FLEET_SRC/scripts/fleet/load.py" load \
        "http://$FLEET_VIP:$2/" "$FLEET_STATE/$1"
    fleet_wait "load generator $1 running" 10 test -s "$FLEET_STATE/$1/counts"
}

fleet_load_stop() { # NAME
    touch "$FLEET_STATE/$1/stop"
    local pid
    pid=$(fleet_pid "$1")
    fleet_wait "load generator $1 stops" 10 fleet_not_running "$pid"
}
# PID has exited: gone, or a zombie its parent (init, for the detached
# processes of the fleet) has not reaped yet - its sockets are closed
fleet_not_running() { ! pid_alive "$1"; }

# fleet_count NAME FIELD [NODE]: ok / failed, or answers by NODE
fleet_count() {
    python3 "$FLEET_SRC/scripts/fleet/load.py" count "$FLEET_STATE/$1" "$2" ${3:+"$3"}
}
fleet_counts_line() { # NAME
    python3 "$FLEET_SRC/scripts/fleet/load.py" summary "$FLEET_STATE/$1"
}
