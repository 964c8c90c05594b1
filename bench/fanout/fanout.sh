#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/fanout/fanout.sh BENCH_FANOUT [bench_fanout args...]
# Starts a 3-server Consul cluster on loopback addresses 127.21.Y.1-3
# (Y picked so that nothing listens there yet; default ports on each
# address; raft_multiplier 1; http_max_conns_per_client raised because
# every simulated host connects from 127.0.0.1, where a real fleet has
# one Consul agent per host), waits for a leader and a working KV write
# (bound: 60 s, a leader is elected in about 7 s), runs BENCH_FANOUT
# against the three servers with their pids for CPU accounting, and
# stops the cluster, also on failure. Exit status: bench_fanout's; 77
# when consul is not installed.
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

cat >"$work/server.hcl" <<HCL
disable_update_check = true
performance { raft_multiplier = 1 }
limits { http_max_conns_per_client = 10000 }
ports { dns = -1, grpc = -1 }
HCL
for i in 1 2 3; do
    mkdir -p "$work/s$i"
    consul agent -server -bootstrap-expect 3 -node "fanout-s$i" -bind "$net.$i" -client "$net.$i" \
        -retry-join "$net.1" -retry-join "$net.2" -retry-join "$net.3" -data-dir "$work/s$i" \
        -config-file "$work/server.hcl" -log-level warn >"$work/s$i.log" 2>&1 &
    pids+=($!)
done
addrs="http://$net.1:8500,http://$net.2:8500,http://$net.3:8500"
ok=
for _ in $(seq 600); do
    if curl -fsS -X PUT --data ok "http://$net.1:8500/v1/kv/fanout-ready" >/dev/null 2>&1 &&
        [ "$(curl -fsS "http://$net.3:8500/v1/kv/fanout-ready?raw&stale" 2>/dev/null)" = ok ]; then
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
set +e
"$bin" --addrs "$addrs" --consul-pids "$(IFS=,; echo "${pids[*]}")" "$@"
rc=$?
set -e
exit $rc
