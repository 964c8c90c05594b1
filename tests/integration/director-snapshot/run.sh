#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The director watcher while its snapshot cannot be written: the table is
# applied all the same (fail static), but /readyz answers 503 naming the
# file, drover_watcher_director_ready is 0, the error counter counts and no
# READY=1 reaches the notify socket; once the directory exists the next
# verify writes the snapshot and it becomes ready (200, READY=1).
# Runs in a network namespace of its own: drover-director on its lo
# (generic XDP, pins on a bpffs the test mounts), Consul dev agent there.
# usage: run.sh DROVER_WATCHER DROVER_DIRECTOR CONSUL_DEV
set -u
WATCHER=$1 DIRECTOR=$2 CONSUL_DEV=$3
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (netns, bpffs, XDP)"; exit 77; }
NS=drv-snap-$$
TMP=$(mktemp -d "${TMPDIR:-/tmp}/drover-dsnap.XXXXXX") || exit 1
WPID="" NPID=""
cleanup() {
    [ -n "$WPID" ] && kill "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null
    [ -n "$NPID" ] && kill "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null
    [ -d "$TMP/consul" ] && ip netns exec "$NS" "$CONSUL_DEV" stop "$TMP/consul" >/dev/null 2>&1
    ip netns del "$NS" 2>/dev/null # lo and its XDP program go with it
    umount "$TMP/bpffs" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
fail() {
    echo "FAIL: $*"
    for f in "$TMP"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 30 "$f"; }; done
    exit 1
}
nsx() { ip netns exec "$NS" "$@"; }
wait_until() { # seconds cmd... (polls every 0.2 s)
    local t=$(($1 * 5))
    shift
    while [ $t -gt 0 ]; do
        "$@" && return 0
        sleep 0.2
        t=$((t - 1))
    done
    return 1
}

ip netns add "$NS" || { echo "SKIP: cannot create a network namespace"; exit 77; }
nsx ip link set lo up
mkdir -p "$TMP/bpffs"
mount -t bpf bpf "$TMP/bpffs" || fail "cannot mount a bpffs"
pin="--pin-root $TMP/bpffs"
key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
cat >"$TMP/director.json" <<JSON
{"hash_key": "$key", "source_v4": "127.0.0.1", "gateway_mac": "02:00:00:00:00:01",
 "vips": [], "proxies": []}
JSON
# shellcheck disable=SC2086 # $pin is two words
nsx "$DIRECTOR" attach --dev lo --mode generic --director-config "$TMP/director.json" $pin \
    >"$TMP/attach.log" 2>&1 || fail "drover-director attach failed"

nsx "$CONSUL_DEV" start "$TMP/consul" >"$TMP/consul-start.log" 2>&1 ||
    fail "consul dev agent did not start"
CONSUL=$(cat "$TMP/consul/addr")
KV=drover/v1/director/snap
kvput() { nsx curl -sf --max-time 5 -X PUT --data "$2" "$CONSUL/v1/kv/$KV/$1" | grep -q true ||
    fail "KV PUT $KV/$1 failed"; }
kvput config "{\"hash_key\":\"$key\"}"
kvput vips/web '{"address":"192.0.2.1","ports":[80],"protocol":"tcp"}'
kvput proxies/p1 '{"address":"127.0.0.2","state":"active"}'

# the notify socket systemd would give it: every datagram, one per line
python3 "$(dirname "$0")/../../lib/drover_testlib.py" notify-log "$TMP/notify.sock" "$TMP/notify.log" &
NPID=$!
# what is awaited is a Python start: about 0.1 s idle, 0.9-1.6 s at load 17,
# past the 5 s this wait had once at load 21. Wait as long as the listener
# runs; 60 s only guards against a hang (TIMEOUT 120)
for _ in $(seq 300); do
    [ -S "$TMP/notify.sock" ] && break
    kill -0 "$NPID" 2>/dev/null || fail "the notify socket listener exited before it bound"
    sleep 0.2
done
[ -S "$TMP/notify.sock" ] || fail "the notify socket listener did not bind within 60 s"

# in the test's own namespace the metrics port cannot collide with anyone's
M=127.0.0.1:9109
SNAP=$TMP/missing/director.pb
# shellcheck disable=SC2086
NOTIFY_SOCKET=$TMP/notify.sock ip netns exec "$NS" "$WATCHER" director run --director-cluster snap \
    --dev lo $pin --consul-addr "$CONSUL" --director-snapshot-file "$SNAP" --metrics-addr $M \
    --verify-interval 300ms --health-interval 200ms --health-timeout 100ms \
    >"$TMP/watcher.log" 2>&1 &
WPID=$!

metric() { nsx curl -s --max-time 2 "http://$M/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
readyz() { nsx curl -s --max-time 2 -o "$TMP/readyz.body" -w '%{http_code}' "http://$M/readyz"; }
applied() { [ "$(metric drover_watcher_director_generation)" != "" ] &&
    [ "$(metric drover_watcher_director_generation)" != "0" ] &&
    [ "$(metric drover_watcher_director_snapshot_errors_total)" != "0" ] &&
    [ -n "$(metric drover_watcher_director_snapshot_errors_total)" ]; }
wait_until 20 applied || fail "no generation applied, or no snapshot error counted"
code=$(readyz)
[ "$code" = 503 ] || fail "/readyz answered $code while the snapshot cannot be written"
grep -q "missing/director.pb" "$TMP/readyz.body" ||
    fail "/readyz body does not name the snapshot: $(cat "$TMP/readyz.body")"
[ "$(metric drover_watcher_director_ready)" = 0 ] || fail "ready gauge is not 0"
# forwarding state is the KV's all the same: the maps hold the new table
# shellcheck disable=SC2086
nsx "$WATCHER" director status --json --dev lo $pin --director-snapshot-file "$SNAP" \
    >"$TMP/status.log" 2>&1
grep -q '"proxies"' "$TMP/status.log" || fail "director status shows no table"
grep -q 'READY=1' "$TMP/notify.log" && fail "READY=1 sent while the snapshot cannot be written"
grep -q 'level=error.*missing/director.pb' "$TMP/watcher.log" || fail "no error logged"
[ "$(grep -c 'level=error.*missing/director.pb' "$TMP/watcher.log")" -eq 1 ] ||
    fail "the same write error logged more than once"

mkdir "$TMP/missing"
ready200() { [ "$(readyz)" = 200 ]; }
wait_until 20 ready200 || fail "not ready after the snapshot directory appeared"
[ -s "$SNAP" ] || fail "snapshot not written"
wait_until 5 grep -q 'READY=1' "$TMP/notify.log" || fail "no READY=1 once the snapshot was written"
[ "$(metric drover_watcher_director_ready)" = 1 ] || fail "ready gauge is not 1"
echo "director snapshot readiness ok"
