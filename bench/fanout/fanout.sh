#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/fanout/fanout.sh BENCH_FANOUT [bench_fanout args...]
# Starts a 3-server Consul cluster on loopback addresses 127.21.Y.1-3
# (Y picked so that nothing listens there yet; default ports on each
# address; tests/lib/consul-cluster.sh's command line, but raft_multiplier
# ${FANOUT_RAFT_MULTIPLIER:-5}, Consul's default:
# production servers on cores of their own run 1, but here followers
# starved of CPU would miss heartbeats and start elections, docs/scaling.md;
# http_max_conns_per_client raised because
# every simulated host connects from 127.0.0.1, where a real fleet has
# one Consul agent per host), waits for a leader and a working KV write
# (bound: 60 s, a leader is elected in about 7 s), runs BENCH_FANOUT
# against the three servers with their pids for CPU accounting, and
# stops the cluster, also on failure. Ends with the elections followers
# started while it ran (one starved of CPU misses the leader's
# heartbeats). Exit status: bench_fanout's; 77 when consul is not
# installed.
set -euo pipefail
bin=$1
shift
command -v consul >/dev/null || { echo "fanout.sh: consul not installed, skipping" >&2; exit 77; }
command -v curl >/dev/null || { echo "fanout.sh: curl not installed, skipping" >&2; exit 77; }
work=$(mktemp -d /tmp/drover-fanout.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

net=
for _ in $(seq 20); do
    y=$((RANDOM % 250 + 1))
    if ! ss -Htln | awk '{print $4}' | grep -q "^127\.21\.$y\."; then net=127.21.$y; break; fi
done
[ -n "$net" ] || { echo "fanout.sh: no free 127.21.Y.0/24 found" >&2; exit 2; }

. "$(dirname "$0")/../../tests/lib/consul-cluster.sh"
for i in 1 2 3; do
    consul_cluster_argv "fanout-s$i" "$net.$i" "$net.$i" "$work/s$i" server "$net.1" "$net.2" "$net.3"
    # the later -hcl wins over consul-cluster.sh's raft_multiplier 1
    "${CONSUL_CLUSTER_ARGV[@]}" -hcl 'limits { http_max_conns_per_client = 10000 }' \
        -hcl "performance { raft_multiplier = ${FANOUT_RAFT_MULTIPLIER:-5} }" \
        >"$work/s$i.log" 2>&1 &
    pids+=($!)
done
addrs="http://$net.1:8500,http://$net.2:8500,http://$net.3:8500"
ok=
for _ in $(seq 600); do
    if consul_cluster_kv_ready "http://$net.1:8500" &&
        [ "$(curl -fsS "http://$net.3:8500/v1/kv/consul-cluster-ready?raw&stale" 2>/dev/null)" = ok ]; then
        ok=1
        break
    fi
    sleep 0.1
done
if [ -z "$ok" ]; then
    echo "fanout.sh: the 3 Consul servers on $net.1-3 had no leader taking KV writes after 60 s; logs:" >&2
    tail -n 20 "$work"/s*.log >&2
    exit 2
fi
leader=$(curl -fsS "http://$net.1:8500/v1/status/leader")
echo "setup: $(consul version | head -1), 3 servers on $net.1-3 (leader $leader), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
# hashicorp/raft logs this (warn) when a follower gives up on its leader
elections() { cat "$work"/s*.log | grep -c "heartbeat timeout reached" || true; }
e0=$(elections)
set +e
"$bin" --addrs "$addrs" --consul-pids "$(IFS=,; echo "${pids[*]}")" "$@"
rc=$?
set -e
e=$(($(elections) - e0))
echo "consul: $e election(s) started by followers that lost the leader (raft_multiplier ${FANOUT_RAFT_MULTIPLIER:-5})"
echo "BENCH fanout_consul_elections $e"
exit $rc
