#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# consul-dev.sh: a real `consul agent -dev` on free loopback ports, for
# tests, benchmarks and the demo.
#
#   consul-dev.sh start   STATEDIR [--acl] [--tls] [extra consul agent args...]
#   consul-dev.sh stop    STATEDIR          SIGKILL the agent, remove STATEDIR
#   consul-dev.sh kill    STATEDIR          SIGKILL the agent, keep STATEDIR
#   consul-dev.sh restart STATEDIR          start again on the same ports
#
# start picks every port free (HTTP, serf LAN/WAN, server RPC; DNS and gRPC
# are disabled), binds only 127.0.0.1, waits until a leader is elected and
# a KV write + read works, then leaves in STATEDIR:
#   addr          http://127.0.0.1:PORT  (what clients use)
#   http_port     PORT
#   pid           the agent's pid
#   ports         all ports (used by restart)
#   consul.log    the agent's output
#   master-token  with --acl: the ACL master token (ACLs on, default deny)
#   https_addr    with --tls: https://127.0.0.1:PORT (HTTP stays on too)
#   ca.pem        with --tls: CA of the agent's certificate, which is valid
#   tls_server_name  for this name only (no IP SAN): clients must verify it
#                 through tls_server_name
#   args          extra args, replayed by restart
#
# Dev agents keep their data in memory: after kill + restart the KV store
# is empty and the Raft index starts again low (which is what a client's
# index-reset logic has to survive).
#
# As a CTest fixture (see tests/lib/ConsulFixture.cmake):
#   drover_consul_fixture(my_consul)            # or (my_consul ACL)
#   set_tests_properties(t PROPERTIES FIXTURES_REQUIRED my_consul
#       ENVIRONMENT DROVER_CONSUL_STATE=${CMAKE_CURRENT_BINARY_DIR}/my_consul)
# The test reads $DROVER_CONSUL_STATE/addr.
set -euo pipefail

die() { echo "consul-dev: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: $0 start|stop|kill|restart STATEDIR [--acl] [consul args...]"
cmd=$1 dir=$2
shift 2

command -v consul >/dev/null 2>&1 || die "consul not installed (scripts/bootstrap.sh installs it)"

free_ports() { # N -> N distinct free TCP ports on 127.0.0.1 (also free for UDP)
    python3 "$(dirname "$0")/drover_testlib.py" free-ports "$1" --udp
}

http_get() { # URL [token] -> body, fails on HTTP error
    if [ -n "${2:-}" ]; then
        curl -sf --max-time 2 -H "X-Consul-Token: $2" "$1"
    else
        curl -sf --max-time 2 "$1"
    fi
}

wait_ready() { # wait for leader + KV round trip
    local port=$1 token=${2:-} pid=$3 i key="consul-dev-probe/$$"
    for i in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        local leader
        leader=$(http_get "http://127.0.0.1:$port/v1/status/leader" "$token" 2>/dev/null || true)
        if [ -n "$leader" ] && [ "$leader" != '""' ]; then
            local hdr=()
            [ -n "$token" ] && hdr=(-H "X-Consul-Token: $token")
            if curl -sf --max-time 2 "${hdr[@]}" -X PUT --data ok \
                    "http://127.0.0.1:$port/v1/kv/$key" 2>/dev/null | grep -q true &&
               curl -sf --max-time 2 "${hdr[@]}" "http://127.0.0.1:$port/v1/kv/$key?raw" \
                    2>/dev/null | grep -q ok; then
                curl -sf --max-time 2 "${hdr[@]}" -X DELETE \
                    "http://127.0.0.1:$port/v1/kv/$key" >/dev/null 2>&1 || true
                return 0
            fi
        fi
        sleep 0.1
    done
    return 1
}

make_certs() { # throw-away CA + server certificate for the name below
    local name=consul.drover.test
    echo "$name" > "$dir/tls_server_name"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=drover test CA" \
        -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" \
        -keyout "$dir/server-key.pem" -out "$dir/server.csr" >/dev/null 2>&1
    printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$name" > "$dir/ext.cnf"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
        -CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.pem" >/dev/null 2>&1
}

launch() { # uses $dir/ports and $dir/args
    local http serf_lan serf_wan server https
    read -r http serf_lan serf_wan server https < "$dir/ports"
    local args=()
    if [ -s "$dir/args" ]; then
        mapfile -t args < "$dir/args"
    fi
    if [ -f "$dir/ca.pem" ]; then
        cat > "$dir/tls.hcl" <<EOF
ports { https = $https }
ca_file = "$dir/ca.pem"
cert_file = "$dir/server.pem"
key_file = "$dir/server-key.pem"
verify_incoming = false
verify_outgoing = false
EOF
        args+=("-config-file=$dir/tls.hcl")
        echo "https://127.0.0.1:$https" > "$dir/https_addr"
    fi
    local token=""
    [ -f "$dir/master-token" ] && token=$(cat "$dir/master-token")
    # setsid: the agent must not die with the shell that started it (CTest
    # runs the fixture set-up as its own short-lived process).
    setsid consul agent -dev -bind 127.0.0.1 -client 127.0.0.1 \
        -http-port "$http" -dns-port -1 -grpc-port -1 \
        -serf-lan-port "$serf_lan" -serf-wan-port "$serf_wan" -server-port "$server" \
        -node "drover-dev-$http" -disable-host-node-id -log-level warn \
        ${args[@]+"${args[@]}"} >>"$dir/consul.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" > "$dir/pid"
    echo "http://127.0.0.1:$http" > "$dir/addr"
    echo "$http" > "$dir/http_port"
    if ! wait_ready "$http" "$token" "$pid"; then
        kill -9 "$pid" 2>/dev/null || true
        return 1
    fi
}

# pid_alive PID: a zombie no one reaped yet is gone, its sockets closed
. "$(dirname "$0")/pid_alive.sh"

# SIGKILL, for a crash (kill) and for stop: a dev agent keeps its data in
# memory, so there is nothing to flush, and its graceful exit on SIGTERM
# takes 2-2.5 s - per fixture and per private agent of every test run.
kill_agent() {
    [ -f "$dir/pid" ] || return 0
    local pid
    pid=$(cat "$dir/pid")
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 250); do # dies within milliseconds; 5 s at most
        pid_alive "$pid" || break
        sleep 0.02
    done
    rm -f "$dir/pid"
}

# SIGTERM, for restart: the agent goes away as an operator's restart takes
# it away (its HTTP server closing connections), not as a crash.
stop_agent() {
    [ -f "$dir/pid" ] || return 0
    local pid
    pid=$(cat "$dir/pid")
    if pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            pid_alive "$pid" || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/pid"
}

case $cmd in
start)
    acl=0 tls=0
    while [ $# -gt 0 ]; do
        case $1 in
        --acl) acl=1 ;;
        --tls) tls=1 ;;
        *) break ;;
        esac
        shift
    done
    [ -d "$dir" ] && [ -f "$dir/pid" ] && kill_agent
    rm -rf "$dir"
    mkdir -p "$dir"
    : > "$dir/args"
    for a in "$@"; do printf '%s\n' "$a" >> "$dir/args"; done
    if [ $acl = 1 ]; then
        token=$(python3 -c 'import uuid; print(uuid.uuid4())')
        echo "$token" > "$dir/master-token"
        cat > "$dir/acl.hcl" <<EOF
acl {
  enabled = true
  default_policy = "deny"
  enable_token_persistence = false
  tokens {
    master = "$token"
    agent = "$token"
  }
}
EOF
        echo "-config-file=$dir/acl.hcl" >> "$dir/args"
    fi
    if [ $tls = 1 ]; then
        make_certs
    fi
    # A port picked free can be taken before consul binds it: try again.
    for attempt in 1 2 3; do
        free_ports 5 > "$dir/ports"
        if launch; then
            echo "consul-dev: agent pid $(cat "$dir/pid") at $(cat "$dir/addr")"
            exit 0
        fi
        echo "consul-dev: start attempt $attempt failed, log:" >&2
        tail -n 20 "$dir/consul.log" >&2 || true
    done
    die "could not start consul agent -dev (see $dir/consul.log)"
    ;;
restart)
    [ -f "$dir/ports" ] || die "$dir has no ports file; use start first"
    stop_agent
    for attempt in 1 2 3 4 5; do
        if launch; then
            echo "consul-dev: agent restarted, pid $(cat "$dir/pid") at $(cat "$dir/addr")"
            exit 0
        fi
        sleep 0.5 # the old sockets may linger briefly
    done
    die "could not restart consul on the same ports (see $dir/consul.log)"
    ;;
kill)
    kill_agent
    ;;
stop)
    kill_agent
    rm -rf "$dir"
    ;;
*)
    die "unknown command $cmd (start|stop|kill|restart)"
    ;;
esac
