#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# drover-watcher director against a real Consul dev agent and a real
# drover-director in network namespaces (topology of tests/e2e/director):
#
#   client --- router --- director (XDP director; drover-watcher director run;
#                 |                 Consul dev agent on its loopback)
#                 |------ proxy1 (XDP decap, VIP on lo, echo server, /healthz)
#                 |------ proxy2 (same)
#
# Consul runs inside the director's namespace (consul-dev.sh, the script
# behind tests/lib/ConsulFixture.cmake) because the watcher must reach both
# Consul on loopback and the proxies' health endpoints from one namespace.
#
#  1. KV proxies/vips/config -> the watcher fills the maps (read back with
#     libbpf through `drover-director status`/`table dump` and
#     `drover-watcher director status --json`) -> traffic reaches both.
#  2. KV edit (proxy2 inactive) -> maps updated -> traffic follows.
#  3. A held change: a change moving more than max_moved_share is held
#     until director/<cluster>/force is written.
#  4. proxy1's health endpoint stopped -> its primary rows move within the
#     health interval x fall (+ slack); back when it answers again.
#     Consul health (--consul-health-service): a proxy whose service check
#     turns critical loses its rows too.
#  5. An established connection survives a drain through second chance.
#  6. Restart with Consul gone: the snapshot is re-applied to maps that a
#     config apply had changed meanwhile.
#  After 1, the watcher's /metrics shows the per-VIP and per-proxy counters
#  that `drover-director stats` prints (the watcher runs with
#  --status-host, the alias of --host-name).
#
# usage: run.sh drover-watcher drover-director xdp_pass.bpf.o consul-dev.sh
set -euo pipefail
WATCHER=${1:?usage: run.sh drover-watcher drover-director xdp_pass.bpf.o consul-dev.sh}
DIRECTOR=${2:?}
XDP_PASS=${3:?}
CONSUL_DEV=${4:?}
E2E=$(cd "$(dirname "$0")/../../e2e/director" && pwd)
. "$E2E/../../lib/director_netns.sh"

if [ "$(id -u)" != 0 ]; then
    echo "integration_director_watcher: needs root (network namespaces, XDP)" >&2
    exit 77
fi
command -v consul >/dev/null || { echo "consul not installed (scripts/bootstrap.sh)" >&2; exit 77; }

director_netns_names dw
TMP=$(mktemp -d /tmp/drover-it-director.XXXXXX)
PIDS=""
WPID="" H1="" H2=""
VIP=10.93.100.1
PORT=8080
HPORT=8081
CLUSTER=itdir
ROOT=drover/v1/
KV="${ROOT}director/$CLUSTER"

cleanup() {
    local rc=$?
    set +e
    for p in $WPID $H1 $H2 $PIDS; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ $rc -ne 0 ]; then
        echo "---- failure (line ${FAILED_LINE:-?}): logs and state" >&2
        for f in "$TMP"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 40 "$f" >&2; }; done
        ip netns exec "$DIR" "$WATCHER" director status --dev eth0 --pin-root "$TMP/bpffs" \
            --director-snapshot-file "$TMP/director.pb" >&2
    fi
    [ -d "$TMP/consul" ] && "$CONSUL_DEV" stop "$TMP/consul" >/dev/null 2>&1
    director_netns_down
    umount "$TMP/bpffs" 2>/dev/null
    rm -rf "$TMP"
    exit $rc
}
trap 'FAILED_LINE=$LINENO' ERR
trap cleanup EXIT INT TERM

fail() { echo "integration_director_watcher: $*" >&2; exit 1; }

# ---- topology (tests/lib/director_netns.sh) ----
mkdir -p "$TMP/bpffs" "$TMP/state"
mount -t bpf bpf "$TMP/bpffs"
director_netns_up 10.93 "$XDP_PASS" "$VIP"

gw_mac=$(nsx "$RT" cat /sys/class/net/td/address)
key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
# drover-director keeps the tunnel settings; the watcher owns the rest.
cat >"$TMP/director.json" <<JSON
{"hash_key": "$key", "source_v4": "10.93.2.2", "gateway_mac": "$gw_mac",
 "vips": [], "proxies": []}
JSON
pin="--pin-root $TMP/bpffs"
nsx "$DIR" "$DIRECTOR" attach --dev eth0 --director-config "$TMP/director.json" $pin
for ns in $P1 $P2; do nsx "$ns" "$DIRECTOR" decap attach --dev eth0 --pin-root "$TMP/bpffs/$ns"; done

# Background processes are started with `ip netns exec` itself (which execs
# the command), never through a shell function, so $! is the process to kill.
ip netns exec "$P1" python3 "$E2E/tcp_echo.py" proxy1 $PORT >"$TMP/echo1.log" 2>&1 &
PIDS="$PIDS $!"
ip netns exec "$P2" python3 "$E2E/tcp_echo.py" proxy2 $PORT >"$TMP/echo2.log" 2>&1 &
PIDS="$PIDS $!"
health() { # ns log -> pid of a /healthz server answering 200
    ip netns exec "$1" python3 "$E2E/../../lib/drover_testlib.py" serve-http 0.0.0.0 $HPORT \
        >"$TMP/$2" 2>&1 &
    echo $!
}
H1=$(health "$P1" health1.log)
H2=$(health "$P2" health2.log)

# ---- Consul in the director's namespace ----
nsx "$DIR" "$CONSUL_DEV" start "$TMP/consul" >"$TMP/consul-start.log" 2>&1 ||
    fail "consul dev agent did not start: $(tail -n 5 "$TMP/consul-start.log")"
CONSUL=$(cat "$TMP/consul/addr")
kvput() { # rel-key json
    nsx "$DIR" curl -sf --max-time 5 -X PUT --data "$2" "$CONSUL/v1/kv/$KV/$1" | grep -q true ||
        fail "KV PUT $KV/$1 failed"
}
kvdel() { nsx "$DIR" curl -sf --max-time 5 -X DELETE "$CONSUL/v1/kv/$KV/$1" >/dev/null; }
proxy() { # name addr state
    kvput "proxies/$1" "{\"address\":\"$2\",\"state\":\"$3\",\"health\":{\"port\":$HPORT,\"path\":\"/healthz\"}}"
}
# the proxies as Consul services with TTL checks we set by hand
for i in 1 2; do
    nsx "$DIR" curl -sf --max-time 5 -X PUT --data \
        "{\"Name\":\"itproxy\",\"ID\":\"p$i\",\"Address\":\"10.93.$((i + 2)).2\",\"Port\":$PORT,\"Check\":{\"TTL\":\"10m\",\"Status\":\"passing\"}}" \
        "$CONSUL/v1/agent/service/register" >/dev/null || fail "service registration failed"
done
ttl() { # p1|p2 pass|fail
    nsx "$DIR" curl -sf --max-time 5 -X PUT "$CONSUL/v1/agent/check/$2/service:$1" >/dev/null ||
        fail "TTL $2 for $1 failed"
}
kvput config "{\"hash_key\":\"$key\",\"max_moved_share\":0.6}"
kvput vips/web "{\"address\":\"$VIP\",\"ports\":[$PORT],\"protocol\":\"tcp\"}"
proxy proxy1 10.93.3.2 active
proxy proxy2 10.93.4.2 active

INTERVAL_MS=400 FALL=2
# --health-timeout: no step needs a slow endpoint judged down (a stopped
# one refuses at once, step 4), so the timeout only has to exceed what a
# healthy endpoint (a Python server) takes on a busy machine: up to 0.37 s
# at load 20 (150 requests). With 300 ms two slow answers in a row took a
# healthy proxy1 out at load 21: step 2 then moved every row and was held.
HEALTH_TIMEOUT_MS=2000
METRICS=127.0.0.1:19109 # the director's own namespace: no clash with other tests
start_watcher() { # consul-addr log
    ip netns exec "$DIR" "$WATCHER" director run --director-cluster $CLUSTER --dev eth0 $pin \
        --consul-addr "$1" --director-snapshot-file "$TMP/director.pb" --metrics-addr "$METRICS" \
        --health-interval ${INTERVAL_MS}ms --health-timeout ${HEALTH_TIMEOUT_MS}ms --health-rise 2 \
        --health-fall $FALL --verify-interval 1s --consul-health-service itproxy \
        --status-host dir1 --log-level debug >>"$TMP/$2" 2>&1 &
    WPID=$!
}
stop_watcher() {
    kill -TERM "$WPID"
    local rc=0
    wait "$WPID" || rc=$?
    [ $rc -eq 0 ] || fail "watcher exited with $rc on SIGTERM"
    WPID=""
}
status_json() {
    nsx "$DIR" "$WATCHER" director status --json --dev eth0 $pin \
        --director-snapshot-file "$TMP/director.pb" 2>/dev/null
}
# jq-less field access: python expression over the status JSON as `s`
q() { status_json | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }
rows() { # host -> primary rows in the live maps
    q "sum(p['primary_rows'] for p in s['proxies'] if p['host']=='$1')"
}
wait_for() { # seconds python-condition-on-s what
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        if [ "$(q "$2" 2>/dev/null)" = True ]; then return 0; fi
        sleep 0.1
    done
    fail "timed out after $1 s waiting for: $3 (status: $(status_json))"
}
ask() { # -> name of the proxy answering a new connection
    local reply
    reply=$(director_netns_ask 10 "$VIP" $PORT hi) || return
    echo "${reply%% *}"
}
answers() { # n -> sorted set of proxies answering n new connections
    local i out=""
    for i in $(seq "$1"); do out="$out $(ask)"; done
    echo $out | tr ' ' '\n' | sort -u | tr '\n' ' '
}

# ---- 1. KV -> maps -> traffic ----
start_watcher "$CONSUL" watcher.log
wait_for 30 "s.get('in_sync') and len([p for p in s['proxies'] if p['primary_rows']>0])==2" \
    "both proxies in the maps"
p1=$(rows proxy1) p2=$(rows proxy2)
[ $((p1 + p2)) -eq 65536 ] || fail "rows do not add up: $p1 + $p2"
# the same table through drover-director's own reader (libbpf)
dumped=$(nsx "$DIR" "$DIRECTOR" table dump --dev eth0 $pin | awk '$2=="10.93.3.2"' | wc -l)
[ "$dumped" -eq "$p1" ] || fail "table dump says $dumped rows for proxy1, status $p1"
nsx "$DIR" "$DIRECTOR" status --dev eth0 $pin | grep -q "proxy 1 10.93.4.2 active" ||
    fail "drover-director status does not list proxy2 (canonical order)"
got=$(answers 12)
[ "$got" = "proxy1 proxy2 " ] || fail "traffic went to '$got', expected both proxies"
echo "1: maps filled ($p1/$p2 rows), traffic to both"
# per-VIP and per-proxy counters: /metrics against drover-director stats
# (no traffic now: both read the same figures)
stats_json=$(nsx "$DIR" "$DIRECTOR" stats --dev eth0 $pin --json)
scrape=$(nsx "$DIR" curl -sf --max-time 5 "http://$METRICS/metrics") || fail "no /metrics on $METRICS"
python3 - "$stats_json" "$scrape" "$VIP:$PORT/tcp" <<'PY' || fail "/metrics and drover-director stats disagree"
import json, re, sys
stats, scrape, vip = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
def metric(name, label, value):
    m = re.search(r'^%s\{dev="eth0",%s="%s"\} (\d+)$' % (name, label, re.escape(value)), scrape, re.M)
    if not m:
        sys.exit("no %s{%s=%s} in /metrics" % (name, label, value))
    return int(m.group(1))
v = stats["vips"][vip]
assert v["packets"] > 0 and v["bytes"] > 0, v
for k in ("packets", "bytes", "drops"):
    got = metric("drover_director_vip_%s_total" % k, "vip", vip)
    assert got == v[k], (k, got, v[k])
total = 0
for proxy, c in stats["proxies"].items():
    for k in ("packets", "bytes"):
        got = metric("drover_director_proxy_%s_total" % k, "proxy", proxy)
        assert got == c[k], (proxy, k, got, c[k])
    total += c["packets"]
assert total == v["packets"], (total, v)
assert metric("drover_director_packets_total", "outcome", "encap_v4") == stats["encap_v4"]
PY
echo "1: /metrics per-VIP and per-proxy counters match drover-director stats"
# its status entry (bound to its session) reports the table in the maps and the VIP
want=$(q "s['table_checksum']")
for _ in $(seq 50); do
    entry=$(nsx "$DIR" curl -sf --max-time 5 "$CONSUL/v1/kv/${ROOT}status/dir1/director?raw") &&
        echo "$entry" | python3 -c "import json,sys; e=json.load(sys.stdin)
sys.exit(not (e['role']=='director' and e['director'].get('table_checksum')=='$want'
              and e['director']['vips']==['$VIP'] and e['cluster']=='$CLUSTER'))" && break
    entry=""
    sleep 0.1
done
[ -n "$entry" ] || fail "status/dir1/director does not report table $want and VIP $VIP: $(
    nsx "$DIR" curl -s "$CONSUL/v1/kv/${ROOT}status/dir1/director?raw")"
meta=$(nsx "$DIR" curl -sf --max-time 5 "$CONSUL/v1/kv/${ROOT}status/dir1/director")
echo "$meta" | python3 -c "import json,sys; sys.exit(not json.load(sys.stdin)[0].get('Session'))" ||
    fail "status/dir1/director is not bound to a session: $meta"
echo "1: status entry reports table $want"

# ---- 1b. one builder: drover-director's own config with the same proxies
# (named as in KV) publishes the very same generation ----
cat >"$TMP/same.json" <<JSON
{"hash_key": "$key", "source_v4": "10.93.2.2", "gateway_mac": "$gw_mac",
 "vips": [],
 "proxies": [{"address": "10.93.4.2", "name": "proxy2"}, {"address": "10.93.3.2", "name": "proxy1"}]}
JSON
want=$(q "s['generation_checksum']")
gen_before=$(q "s['generation']")
nsx "$DIR" "$DIRECTOR" apply --dev eth0 --director-config "$TMP/same.json" $pin
[ "$(q "s['generation']")" != "$gen_before" ] || fail "drover-director apply did not flip"
[ "$(q "s['generation_checksum']")" = "$want" ] ||
    fail "config-fed table differs from the watcher's: $(q "s['generation_checksum']") vs $want"
# its empty VIP list removed the VIP: the watcher's next check puts it back
wait_for 15 "s['in_sync']" "maps in sync again"
for _ in $(seq 100); do
    [ "$(ask 2>/dev/null)" != "" ] && break
    sleep 0.1
done
[ -n "$(ask)" ] || fail "VIP not restored after drover-director apply removed it"
echo "1b: drover-director's config path builds the identical generation; VIP set repaired"

# ---- 2. KV edit -> maps -> traffic ----
proxy proxy2 10.93.4.2 inactive
wait_for 15 "s['in_sync'] and all(p['primary_rows']==(65536 if p['host']=='proxy1' else 0) for p in s['proxies'])" \
    "proxy2 out of the table"
got=$(answers 6)
[ "$got" = "proxy1 " ] || fail "after deactivating proxy2 traffic went to '$got'"
proxy proxy2 10.93.4.2 active
wait_for 15 "s['in_sync'] and all(p['primary_rows']>20000 for p in s['proxies'])" "proxy2 back"
echo "2: KV edit followed by maps and traffic"

# ---- 3. guard: a change moving > max_moved_share is held until forced ----
kvput config "{\"hash_key\":\"$key\",\"max_moved_share\":0.1}"
sleep 0.5 # let the config (0.1) land first; nothing moves with it
proxy proxy1 10.93.3.2 inactive # would move ~half of the rows
wait_for 15 "s['held'] and s['held_moved_share'] > 0.3" "the change to be held"
[ "$(rows proxy1)" -gt 20000 ] || fail "held change reached the maps"
grep -q "held back" "$TMP/watcher.log" || fail "held change not reported in the log"
kvput force "{\"expires\":\"$(date -u -d '+10 min' +%Y-%m-%dT%H:%M:%SZ)\",\"author\":\"it\",\"reason\":\"test\"}"
wait_for 15 "not s['held'] and s['in_sync']" "forced change applied"
[ "$(rows proxy1)" -eq 0 ] || fail "forced change did not reach the maps"
proxy proxy1 10.93.3.2 active
wait_for 15 "all(p['primary_rows']>20000 for p in s['proxies'])" "proxy1 back"
kvdel force
kvput config "{\"hash_key\":\"$key\",\"max_moved_share\":0.6}"
echo "3: moved-share guard held the change until forced"

# ---- 4. health: proxy1's endpoint stops -> its rows move ----
kill "$H1"
while kill -0 "$H1" 2>/dev/null; do sleep 0.05; done
H1=""
t0=$(date +%s%N)
# fall checks at the interval, plus one interval of slack and scheduling
wait_for 10 "[p['primary_rows'] for p in s['proxies'] if p['host']=='proxy1']==[0]" \
    "proxy1's rows to move after its health endpoint stopped"
echo "4: proxy1 unhealthy -> rows moved after $((($(date +%s%N) - t0) / 1000000)) ms (interval ${INTERVAL_MS} ms, fall $FALL)"
got=$(answers 4)
[ "$got" = "proxy2 " ] || fail "with proxy1 unhealthy traffic went to '$got'"
H1=$(health "$P1" health1b.log)
wait_for 15 "all(p['primary_rows']>20000 for p in s['proxies'])" "proxy1 healthy again"
ttl p2 fail
wait_for 15 "[p['primary_rows'] for p in s['proxies'] if p['host']=='proxy2']==[0]" \
    "proxy2's rows to move when Consul says critical"
ttl p2 pass
wait_for 15 "all(p['primary_rows']>20000 for p in s['proxies'])" "proxy2 passing again"
echo "4b: Consul health critical -> rows moved; passing -> back"

# ---- 5. an established connection survives a drain (second chance) ----
timeout 90 ip netns exec "$CLI" python3 "$E2E/client.py" "$VIP" $PORT "$TMP/state" \
    >"$TMP/client.log" 2>&1 &
client=$!
PIDS="$PIDS $client"
director_netns_wait_file "$TMP/state/owner" "$client" || fail "client never got an answer"
owner=$(cat "$TMP/state/owner")
if [ "$owner" = proxy1 ]; then proxy proxy1 10.93.3.2 draining; else proxy proxy2 10.93.4.2 draining; fi
wait_for 15 "[p['primary_rows'] for p in s['proxies'] if p['host']=='$owner']==[0]" "$owner drained"
touch "$TMP/state/go"
wait "$client" || fail "client failed: $(cat "$TMP/client.log")"
cat "$TMP/client.log"
echo "5: established connection survived draining $owner"
if [ "$owner" = proxy1 ]; then proxy proxy1 10.93.3.2 active; else proxy proxy2 10.93.4.2 active; fi
wait_for 15 "all(p['primary_rows']>20000 for p in s['proxies'])" "$owner active again"

# ---- 6. restart without Consul re-applies the snapshot ----
want=$(q "s['generation_checksum']")
stop_watcher
"$CONSUL_DEV" kill "$TMP/consul"
# meanwhile something else publishes (the standalone config: no proxies)
nsx "$DIR" "$DIRECTOR" apply --dev eth0 --director-config "$TMP/director.json" $pin
[ "$(q "s['generation_checksum']")" != "$want" ] || fail "config apply did not change the maps"
start_watcher "$CONSUL" watcher2.log # Consul is gone: connection refused
wait_for 20 "s['in_sync'] and s['generation_checksum']=='$want'" "snapshot re-applied"
grep -q "re-applying the snapshot" "$TMP/watcher2.log" || fail "restart did not use the snapshot"
got=$(answers 8)
[ "$got" = "proxy1 proxy2 " ] || fail "after the restart traffic went to '$got'"
echo "6: restart without Consul re-applied the snapshot, traffic flows"
stop_watcher
echo "integration_director_watcher: ok"
