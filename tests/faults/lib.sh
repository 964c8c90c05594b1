# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# tests/faults/lib.sh: the fault suite's harness (CTest label "faults").
# One fleet (scripts/fleet/lib.sh) in network namespaces, load through the
# VIP on both ports, then one fault at a time, each judged the same way.
#
# A fault test is a script in tests/faults/ that does:
#
#   . "$(dirname "$0")/lib.sh"           # sets FAULTS_SRC, sources the fleet lib
#   faults_main "$@"                      # args: BUILD-DIR [--consul-cluster]
#   my_fault() { ...break something...; ...repair it...; }
#   faults_run NAME BUDGET my_fault       # NAME: [a-z0-9_]; BUDGET: failed requests allowed
#   faults_run other 0 other_fault        # next fault, same fleet
#
# faults_main brings the whole fleet up (Consul, kube stand-in, pods,
# exporters, both proxy hosts, director + director-mode watcher), starts
# two load generators from the client namespace through the VIP (ports 80
# and 8080, a new connection per request) and records the baseline:
# HAProxy's servers on every proxy (address, state, weight) and the
# director's applied proxy states. Everything is torn down on exit.
#
# faults_run NAME BUDGET FN runs FN (the fault and, once it returns, the
# repair is done), then waits until the fleet is back to the baseline
# (bounded by FAULTS_RECOVERY_S, 60 s by default), and checks that the
# requests failed during FN + recovery are <= BUDGET. It prints
#   BENCH faults_NAME_failed N
#   BENCH faults_NAME_recovery_s X    (seconds from FN's return to baseline)
# which scripts/bench.sh faults collects (FAULTS_LAST_FAILED keeps the
# count, for a later fault's budget). A fault that fails its budget or
# never returns to the baseline fails the test (exit 1, the logs' tails).
#
# With --consul-cluster, Consul is the production topology instead of one
# dev agent: three servers (consul-1..3, each in its own namespace on the
# router, 10.93.21-23.2, `-server -bootstrap-expect 3 -retry-join`, data
# under the state dir), and a client agent in every host that runs a
# daemon: proxy-1, proxy-2, director and "ops" (10.93.20.2: the exporters,
# droverctl and the test itself reach it from the host's loopback through
# a unix-socket relay, $FLEET_CONSUL). The daemons talk to their host's
# client agent at 127.0.0.1:8500. Helpers for the cluster faults:
#   faults_consul_leader            the index (1..3) of the raft leader
#   faults_consul_kill N            SIGKILL server N
#   faults_consul_start N           start server N (again: same data dir)
#   faults_partition ROLE on|off    cut ROLE's host from the servers (blackhole
#                                   routes to their subnets; the host keeps
#                                   serving the VIP)
#   faults_kv_ready                 Consul answers KV reads with a leader
#
# Other helpers: faults_failed (both loads' failed requests, summed),
# faults_state (the state compared with the baseline), ctl (droverctl
# against $FLEET_CONSUL), faults_log (a line on stderr).

FAULTS_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FLEET_SRC=$FAULTS_SRC
. "$FLEET_SRC/scripts/fleet/lib.sh"
. "$FAULTS_SRC/tests/lib/consul-cluster.sh"

FAULTS_RECOVERY_S=${FAULTS_RECOVERY_S:-60}
FAULTS_CLUSTER=0
FAULTS_SERVERS="1 2 3"

faults_log() { echo "faults: $*" >&2; }

ctl() { "$FLEET_BIN_CTL" --consul-addr "$FLEET_CONSUL" --author faults "$@"; }

faults_failed() {
    echo $(($(fleet_count load80 failed) + $(fleet_count load8080 failed)))
}

# The state a fault must leave as it found it: HAProxy's servers of both
# services on both proxies (address, state, weight; not the check text),
# and the director's applied proxies (name, state, health).
faults_state() {
    local p s
    for p in proxy-1 proxy-2; do
        for s in $FLEET_SERVICES; do
            fleet_servers "$p" "$s" | awk -v h="$p/$s" '{ print h, $2, $3, $4 }' | sort
        done
    done
    fleet_director_status | awk '$1 ~ /^proxy-/ { print "director", $1, $3, $4 }' | sort
}

faults_at_baseline() {
    faults_state >"$FLEET_STATE/state.now" 2>/dev/null && cmp -s "$FLEET_STATE/state.now" "$FLEET_STATE/baseline"
}

# ---- the Consul cluster ----

faults_server_ip() { echo "10.93.$((20 + $1)).2"; }

faults_consul_agent() { # NAME ROLE BIND-IP [server]
    local name=$1 role=$2 ip=$3 join=() n
    for n in $FAULTS_SERVERS; do join+=("$(faults_server_ip "$n")"); done
    consul_cluster_argv "$name" "$ip" 127.0.0.1 "$FLEET_STATE/$name" "${4:-client}" "${join[@]}"
    fleet_bg "$name" ip netns exec "$(fleet_ns "$role")" "${CONSUL_CLUSTER_ARGV[@]}"
}

faults_consul_start() { faults_consul_agent "consul-$1" "consul-$1" "$(faults_server_ip "$1")" server; }

faults_consul_kill() {
    local pid
    pid=$(fleet_pid "consul-$1")
    kill -KILL "$pid" 2>/dev/null || true
    fleet_wait "consul-$1 exits" 10 fleet_not_running "$pid"
}

faults_consul_leader() {
    local l
    l=$(curl -sf --max-time 2 "$FLEET_CONSUL/v1/status/leader" | tr -d '"') || return 1
    [ -n "$l" ] || return 1
    l=${l%:*}
    l=${l#10.93.}
    echo $((${l%%.*} - 20))
}

faults_kv_ready() { curl -sf --max-time 2 "$FLEET_CONSUL/v1/kv/drover/v1/?keys" >/dev/null; }

faults_partition() { # ROLE on|off
    local n verb=add
    [ "$2" = on ] || verb=del
    for n in $FAULTS_SERVERS; do
        ip -n "$(fleet_ns "$1")" route "$verb" blackhole "$(faults_server_ip "$n")/32"
    done
}

faults_consul_cluster() {
    local n role i=0 sock port
    for n in $FAULTS_SERVERS ops; do
        if [ "$n" = ops ]; then role=ops i=20; else role=consul-$n i=$((20 + n)); fi
        ip netns add "$(fleet_ns "$role")"
        echo "$(fleet_ns "$role")" >>"$FLEET_STATE/namespaces"
        ip -n "$(fleet_ns "$role")" link set lo up
        fleet_link "$role" "$i"
    done
    for n in $FAULTS_SERVERS; do faults_consul_start "$n"; done
    faults_consul_agent consul-ops ops 10.93.20.2
    # the host's loopback -> ops's client agent (unix-socket relay)
    sock=$FLEET_STATE/consul-ops.sock
    port=$(fleet_free_port)
    fleet_bg consul-relay-ops ip netns exec "$(fleet_ns ops)" \
        socat "UNIX-LISTEN:$sock,fork,mode=600" TCP:127.0.0.1:8500
    fleet_wait "relay socket for ops" 10 test -S "$sock"
    fleet_bg consul-relay-host socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$sock"
    FLEET_CONSUL=http://127.0.0.1:$port
    # election with raft_multiplier 1 takes a few seconds (FACTS.md: ~7 s)
    fleet_wait "3-server Consul elects a leader, KV answers through ops's client agent" 60 \
        consul_cluster_kv_ready "$FLEET_CONSUL"
}

# In cluster mode the fleet's hosts get a client agent instead of the relay
# to one dev agent: same address for the daemons (127.0.0.1:8500).
faults_client_agent() { # ROLE
    faults_consul_agent "consul-agent-$1" "$1" "$(fleet_nsx "$1" ip -4 -o addr show dev eth0 | awk '{ print $4 }' | cut -d/ -f1)"
    fleet_wait "Consul client agent on $1 answers with a leader" 60 \
        fleet_nsx "$1" curl -sf --max-time 2 http://127.0.0.1:8500/v1/kv/consul-cluster-ready
}

# ---- bring-up, the fault loop, teardown ----

faults_on_exit() {
    local rc=$? f
    set +e
    if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -n "${FLEET_STATE:-}" ]; then
        echo "---- faults: failed; last lines of every log:" >&2
        for f in "$FLEET_STATE"/*.log "$FLEET_STATE"/consul/consul.log; do
            [ -s "$f" ] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }
        done
    fi
    # FAULTS_SAVE_LOGS=DIR: every log of the fleet is copied there, pass
    # or fail (the logs go with the fleet's state dir otherwise)
    if [ -n "${FAULTS_SAVE_LOGS:-}" ] && [ -n "${FLEET_STATE:-}" ]; then
        mkdir -p "$FAULTS_SAVE_LOGS" && cp -r "$FLEET_STATE"/*.log "$FLEET_STATE"/consul "$FAULTS_SAVE_LOGS"/ 2>/dev/null
    fi
    [ -z "${FLEET_STATE:-}" ] || fleet_down "$FLEET_STATE"
    exit $rc
}

faults_main() { # BUILD-DIR [--consul-cluster]
    BUILD=${1:?usage: $0 BUILD-DIR [--consul-cluster]}
    BUILD=$(cd "$BUILD" && pwd)
    [ "${2:-}" != --consul-cluster ] || FAULTS_CLUSTER=1
    if [ "$(id -u)" != 0 ]; then
        echo "faults: needs root (network namespaces, XDP)" >&2
        exit 77
    fi
    FLEET_BIN_DIRECTOR=$BUILD/xdp-lb/drover-director
    FLEET_BIN_AGENT=$BUILD/agent-checker/drover-agent-checker
    FLEET_BIN_EXPORTER=$BUILD/exporter/drover-exporter
    FLEET_BIN_WATCHER=$BUILD/watcher/drover-watcher
    FLEET_BIN_CTL=$BUILD/ctl/droverctl
    local b xdp=$BUILD/tests/e2e/fleet/e2e_fleet_xdp_pass.bpf.o p n
    for b in "$FLEET_BIN_DIRECTOR" "$FLEET_BIN_AGENT" "$FLEET_BIN_EXPORTER" "$FLEET_BIN_WATCHER" \
        "$FLEET_BIN_CTL" "$xdp"; do
        [ -e "$b" ] || fleet_die "$b is missing: build the faults_deps target first"
    done
    fleet_init "$(mktemp -d /tmp/drover-faults.XXXXXX)"
    echo $$ >"$FLEET_STATE/owner"
    trap faults_on_exit EXIT
    trap 'exit 130' INT TERM

    fleet_topology "$xdp"
    if [ "$FAULTS_CLUSTER" = 1 ]; then
        faults_consul_cluster
        fleet_consul_bridge() { faults_client_agent "$1"; }
    else
        fleet_consul
    fi
    fleet_kube_start
    for n in 1 2 3 4; do fleet_pod "node-$n"; done
    fleet_exporter 1
    fleet_exporter 2
    faults_kv_nodes() {
        for n in 1 2 3; do fleet_kv_get "$(fleet_node_key "$FLEET_CLUSTER" "node-$n")" | grep -q '"eligible":true' || return 1; done
    }
    fleet_wait "exporter writes the nodes into Consul KV" 60 faults_kv_nodes
    fleet_haproxy_services
    for p in proxy-1 proxy-2; do fleet_proxy "$p"; done
    fleet_director
    fleet_director_kv
    fleet_director_watcher
    faults_dir_ready() { fleet_director_state_is proxy-1 active && fleet_director_state_is proxy-2 active; }
    fleet_wait "director-mode watcher applies both proxies, healthy" 60 faults_dir_ready
    faults_full() { [ "$(fleet_servers "$1" "$2" | grep -c ' UP ')" = 3 ]; }
    for p in proxy-1 proxy-2; do
        for n in $FLEET_SERVICES; do
            fleet_wait "$p: be_$n has node-1..3 UP" 60 faults_full "$p" "$n"
        done
    done
    faults_state >"$FLEET_STATE/baseline"
    fleet_load_start load80 "$FLEET_PORT_web"
    fleet_load_start load8080 "$FLEET_PORT_api"
    faults_some_ok() { [ "$(fleet_count load80 ok)" -ge 20 ] && [ "$(fleet_count load8080 ok)" -ge 20 ]; }
    fleet_wait "load through the VIP on both ports (20 answers each)" 30 faults_some_ok
    [ "$(faults_failed)" = 0 ] || fleet_die "requests failed before any fault: $(fleet_counts_line load80); $(fleet_counts_line load8080)"
    faults_log "fleet up ($([ "$FAULTS_CLUSTER" = 1 ] && echo "3-server Consul cluster + client agents" || echo "Consul dev agent")), baseline:"
    sed 's/^/   /' "$FLEET_STATE/baseline" >&2
}

faults_run() { # NAME BUDGET FN
    local name=$1 budget=$2 fn=$3 f0 f1 t0 t1 end
    faults_log "fault $name (budget $budget failed requests)"
    f0=$(faults_failed)
    "$fn"
    t0=$(date +%s.%N)
    end=$(($(date +%s) + FAULTS_RECOVERY_S))
    until faults_at_baseline; do
        if [ "$(date +%s)" -ge "$end" ]; then
            diff "$FLEET_STATE/baseline" "$FLEET_STATE/state.now" >&2
            fleet_die "fault $name: not back to the baseline ${FAULTS_RECOVERY_S}s after the repair (diff above: - baseline, + now)"
        fi
        sleep 0.2
    done
    t1=$(date +%s.%N)
    # a request in flight when the state came back is still counted
    sleep 1
    f1=$(faults_failed)
    FAULTS_LAST_FAILED=$((f1 - f0))
    echo "BENCH faults_${name}_failed $((f1 - f0))"
    echo "BENCH faults_${name}_recovery_s $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
    if [ $((f1 - f0)) -gt "$budget" ]; then
        fleet_die "fault $name: $((f1 - f0)) failed requests, budget $budget ($(fleet_counts_line load80); $(fleet_counts_line load8080))"
    fi
}
