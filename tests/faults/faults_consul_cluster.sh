#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# faults_consul_cluster: the production Consul topology (3 servers, a client
# agent on every host; tests/faults/lib.sh --consul-cluster) under load
# through the VIP. One at a time, each with zero failed requests and the
# fleet back to its baseline:
#   consul_leader_kill      SIGKILL the raft leader; a new one is elected;
#                           the killed server is started again and rejoins
#   consul_server_restart   a follower stopped and started (same data dir)
#   consul_partition        proxy-1's host cut off from the servers for
#                           30 s: it keeps serving, converges after
#   consul_snapshot_restore `consul snapshot save`, drover's KV deleted,
#                           `consul snapshot restore`
# usage: faults_consul_cluster.sh BUILD-DIR --consul-cluster
set -euo pipefail
. "$(dirname "$0")/lib.sh"
faults_main "$@"

leader_kill() {
    local l
    l=$(faults_consul_leader) || fleet_die "no raft leader to kill"
    faults_log "killing the raft leader consul-$l"
    faults_consul_kill "$l"
    new_leader() { local n; n=$(faults_consul_leader) && [ "$n" != "$l" ]; }
    # raft_multiplier 1: election timeout ~1 s, a few rounds at most
    fleet_wait "a new raft leader after consul-$l was killed" 30 new_leader
    fleet_wait "KV answers through the client agents" 30 faults_kv_ready
    faults_consul_start "$l"
}

server_restart() {
    local l n
    l=$(faults_consul_leader) || fleet_die "no raft leader"
    n=$((l % 3 + 1))
    faults_log "restarting the follower consul-$n"
    kill -TERM "$(fleet_pid "consul-$n")"
    fleet_wait "consul-$n stops" 30 fleet_not_running "$(fleet_pid "consul-$n")"
    faults_consul_start "$n"
    members_alive() {
        [ "$(curl -sf "$FLEET_CONSUL/v1/agent/members" | python3 -c 'import json, sys
print(sum(1 for m in json.load(sys.stdin) if m["Name"].startswith("consul-") and m["Tags"].get("role") == "consul" and m["Status"] == 1))')" = 3 ]
    }
    fleet_wait "consul-$n rejoins (3 servers alive)" 60 members_alive
}

partition() {
    faults_log "proxy-1's host cut off from the Consul servers for 30 s"
    faults_partition proxy-1 on
    sleep 30
    faults_partition proxy-1 off
    fleet_wait "proxy-1's client agent reads KV again" 60 \
        fleet_nsx proxy-1 curl -sf --max-time 2 http://127.0.0.1:8500/v1/kv/consul-cluster-ready
}

snapshot_restore() {
    local snap=$FLEET_STATE/consul.snap
    consul snapshot save -http-addr="${FLEET_CONSUL#http://}" "$snap" >/dev/null
    faults_log "snapshot saved; deleting the HAProxy and director definitions, then restoring it"
    curl -sf -X DELETE "$FLEET_CONSUL/v1/kv/drover/v1/haproxy/?recurse" >/dev/null
    curl -sf -X DELETE "$FLEET_CONSUL/v1/kv/drover/v1/director/?recurse" >/dev/null
    sleep 3
    consul snapshot restore -http-addr="${FLEET_CONSUL#http://}" "$snap" >/dev/null
    fleet_wait "KV answers after the restore" 30 faults_kv_ready
}

faults_run consul_leader_kill 0 leader_kill
faults_run consul_server_restart 0 server_restart
faults_run consul_partition 0 partition
faults_run consul_snapshot_restore 0 snapshot_restore
echo "faults_consul_cluster: ok"
