# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# tests/lib/consul-cluster.sh: the production Consul topology for tests and
# benchmarks - 3 servers (`-server -bootstrap-expect 3`, each joining the
# others with -retry-join) and, where wanted, client agents joining them.
# Sourced; the caller starts the processes its own way (in the background
# on loopback addresses, or in network namespaces) and stops them.
#
#   consul_cluster_argv NODE BIND CLIENT DATA-DIR server|client JOIN-ADDR...
#       sets CONSUL_CLUSTER_ARGV to the `consul agent` command line of one
#       member: bind (serf, raft) on BIND, HTTP on CLIENT:8500, data under
#       DATA-DIR (created), DNS and gRPC off, raft_multiplier 1 (elections
#       in a few seconds instead of ~7 s: FACTS.md), no update check, log
#       level warn. Append more arguments to the array as needed.
#   consul_cluster_kv_ready HTTP-ADDR
#       true once a KV write through HTTP-ADDR (http://IP:PORT) succeeds,
#       which needs an elected leader; one attempt, 2 s at most: the
#       caller polls it within its own bound.

consul_cluster_argv() {
    local node=$1 bind=$2 client=$3 data=$4 role=$5 j
    shift 5
    mkdir -p "$data"
    CONSUL_CLUSTER_ARGV=(consul agent -node "$node" -bind "$bind" -client "$client"
        -http-port 8500 -dns-port -1 -grpc-port -1 -data-dir "$data" -log-level warn
        -hcl 'performance { raft_multiplier = 1 }' -hcl 'disable_update_check = true')
    for j in "$@"; do CONSUL_CLUSTER_ARGV+=(-retry-join "$j"); done
    case $role in
    server) CONSUL_CLUSTER_ARGV+=(-server -bootstrap-expect 3) ;;
    client) ;;
    *)
        echo "consul_cluster_argv: role '$role' is neither server nor client" >&2
        return 2
        ;;
    esac
}

consul_cluster_kv_ready() {
    curl -fsS --max-time 2 -X PUT --data-binary ok "$1/v1/kv/consul-cluster-ready" >/dev/null 2>&1
}
