#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the commands of drover-director@.service and drover-decap@.service
# as systemd would (ExecStartPre, ExecStart, then ExecStop; %i = eth0, the
# drover-director path and /etc/drover/ pointed at the build and a temp
# dir, $DROVER_*_ARGS empty) and checks their effect: after start the XDP
# program is on the device, its pins are under the units' default pin root
# /sys/fs/bpf/drover and `status`/`decap stats` answer; after stop the
# program and its pins are gone. So the units' command lines are known to
# work, not only to parse. The script runs in a network and mount
# namespace of its own (unshare) with a private bpffs on /sys/fs/bpf, so
# the default paths the units use touch nothing of the host; both go away
# with the process.
#
# With CONSUL_DEV_SH and DROVER_WATCHER also drover-watcher-director@'s
# ExecStart, while the director is attached, against a Consul dev agent in
# the same namespace: it must send READY=1 on $NOTIFY_SOCKET (the unit is
# Type=notify), report its table in sync, and stop cleanly on SIGTERM.
#
#   run_unit_commands.sh UNIT_DIR DROVER_DIRECTOR [CONSUL_DEV_SH DROVER_WATCHER]
# Needs root, unshare(1), ip(8); 77 (skip) without them.
set -euo pipefail

[ $# -eq 2 ] || [ $# -eq 4 ] ||
    { echo "usage: $0 UNIT_DIR DROVER_DIRECTOR [CONSUL_DEV_SH DROVER_WATCHER]" >&2; exit 2; }
units=$1 bin=$2 consul_dev=${3:-} watcher=${4:-}
testlib=$(dirname "$0")/../../lib/drover_testlib.py
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! command -v unshare >/dev/null; then
    echo "SKIP: needs root, ip(8) and unshare(1)"
    exit 77
fi
if [ -z "${DROVER_OPS_UNSHARED:-}" ]; then
    exec unshare --net --mount --propagation private \
        env DROVER_OPS_UNSHARED=1 "$0" "$@"
fi
mount -t bpf bpf /sys/fs/bpf

dev=eth0
pins=/sys/fs/bpf/drover/$dev
tmp=$(mktemp -d /tmp/drover-ops-units.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -z "$consul_dev" ] || "$consul_dev" stop "$tmp/consul" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip link set lo up
ip link add "$dev" type veth peer name "${dev}p"
ip link set "$dev" up
ip link set "${dev}p" up
ip addr add 192.0.2.1/24 dev "$dev"

cat > "$tmp/director-$dev.json" <<JSON
{
  "hash_key": "000102030405060708090a0b0c0d0e0f",
  "gue_port": 19523,
  "source_v4": "192.0.2.1",
  "gateway_mac": "02:00:00:00:00:01",
  "vips": [{"address": "198.51.100.1", "port": 80}],
  "proxies": [{"address": "192.0.2.10", "name": "proxy-1"},
              {"address": "192.0.2.11", "name": "proxy-2"}]
}
JSON

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# unit_cmds UNIT KEY -> the KEY= command lines of UNIT, as run here
# (the single-quoted $DROVER_... is the units' text, not ours to expand)
# shellcheck disable=SC2016
unit_cmds() {
    sed -n "s/^$2=//p" "$units/$1" |
        sed -e "s|%i|$dev|g" -e "s|/usr/local/sbin/drover-director|$bin|g" \
            -e "s|/usr/local/sbin/drover-watcher|$watcher|g" \
            -e "s|/etc/drover/|$tmp/|g" -e "s|/var/lib/drover/|$tmp/|g" \
            -e 's|\$DROVER_[A-Z_]*ARGS||g'
}

run_key() { # UNIT KEY: run every KEY= line in the namespace, as systemd does
    local line n=0
    while IFS= read -r line; do
        n=$((n + 1))
        # word splitting as systemd's (the units use no quoting)
        # shellcheck disable=SC2086
        if ! $line > "$tmp/out" 2>&1; then
            fail "$1 $2 '$line': $(cat "$tmp/out")"
            return 1
        fi
        echo "ok   $1 $2: ${line#"$bin" }"
    done < <(unit_cmds "$1" "$2")
    [ "$n" -gt 0 ] || { fail "$1 has no $2"; return 1; }
}

xdp_on() { ip -d link show "$dev" | grep -q "prog/xdp"; }

check_cycle() { # UNIT PROBE...: start, probe, stop, check it is gone
    local unit=$1
    shift
    if grep -q '^ExecStartPre=' "$units/$unit"; then
        run_key "$unit" ExecStartPre || return 0
    fi
    run_key "$unit" ExecStart || return 0
    xdp_on || fail "$unit: no XDP program on $dev after ExecStart"
    [ -d "$pins" ] || fail "$unit: nothing pinned under $pins after ExecStart"
    "$bin" "$@" --dev "$dev" > "$tmp/out" 2>&1 ||
        fail "$unit: '$* --dev $dev' after ExecStart: $(cat "$tmp/out")"
    if [ "$unit" = drover-director@.service ] && [ -n "$watcher" ]; then
        check_watcher
    fi
    run_key "$unit" ExecStop || return 0
    if xdp_on; then fail "$unit: XDP program still on $dev after ExecStop"; fi
    if [ -n "$(ls -A "$pins" 2>/dev/null)" ]; then
        fail "$unit: pins left after ExecStop: $(ls "$pins")"
    fi
    echo "ok   $unit: attached, answered '$*', detached, pins gone"
}

# drover-watcher-director@'s ExecStart as systemd runs a Type=notify
# service, with the director attached
check_watcher() {
    local unit=drover-watcher-director@.service line
    line=$(unit_cmds "$unit" ExecStart)
    [ -n "$line" ] || { fail "$unit has no ExecStart"; return; }
    # systemd creates the unit's StateDirectory= (/var/lib/<dir>, here $tmp)
    local d
    for d in $(sed -n 's/^StateDirectory=//p' "$units/$unit"); do
        case $d in drover | drover/*) mkdir -p "$tmp/${d#drover}" ;; esac
    done
    "$consul_dev" start "$tmp/consul" > "$tmp/consul.out" 2>&1 ||
        { fail "consul dev agent: $(cat "$tmp/consul.out")"; return; }
    local consul hport
    consul=$(cat "$tmp/consul/addr")
    # one proxy with a /healthz that answers
    ip addr add 192.0.2.10/32 dev lo
    python3 "$testlib" serve-http 192.0.2.10 0 --port-file "$tmp/hport" >/dev/null &
    pids+=("$!")
    for _ in $(seq 100); do [ -s "$tmp/hport" ] && break; sleep 0.1; done
    hport=$(cat "$tmp/hport")
    local kv="$consul/v1/kv/drover/v1/director/ops"
    curl -sf --max-time 5 -X PUT --data '{"hash_key":"000102030405060708090a0b0c0d0e0f"}' "$kv/config" >/dev/null &&
    curl -sf --max-time 5 -X PUT --data '{"address":"198.51.100.1","ports":[80],"protocol":"tcp"}' "$kv/vips/web" >/dev/null &&
    curl -sf --max-time 5 -X PUT --data "{\"address\":\"192.0.2.10\",\"state\":\"active\",\"health\":{\"port\":$hport,\"path\":\"/healthz\"}}" \
        "$kv/proxies/proxy-1" >/dev/null || { fail "KV writes to $kv failed"; return; }

    # the notify socket systemd would hand the service
    python3 "$testlib" notify-log "$tmp/notify" "$tmp/notify.log" --until READY=1 --timeout 60 &
    local npid=$!
    pids+=("$npid")
    for _ in $(seq 100); do [ -S "$tmp/notify" ] && break; sleep 0.1; done

    # shellcheck disable=SC2086
    NOTIFY_SOCKET=$tmp/notify DROVER_DIRECTOR_CLUSTER=ops DROVER_CONSUL_ADDR=$consul \
        DROVER_HEALTH_INTERVAL=200ms DROVER_HEALTH_RISE=1 $line > "$tmp/watcher.log" 2>&1 &
    local wpid=$!
    pids+=("$wpid")
    if ! wait "$npid"; then
        fail "$unit: no READY=1 within 60 s (got: $(cat "$tmp/notify.log" 2>/dev/null)); log: $(tail -n 5 "$tmp/watcher.log")"
    else
        echo "ok   $unit ExecStart: ${line#"$watcher" } -> READY=1"
        local snap=${line##*--director-snapshot-file }
        snap=${snap%% *}
        if "$watcher" director status --dev "$dev" --director-snapshot-file "$snap" > "$tmp/status" 2>&1 &&
           grep -Eq "in_sync:? +yes" "$tmp/status"; then
            echo "ok   $unit: director status in sync"
        else
            fail "$unit: director status not in sync: $(cat "$tmp/status")"
        fi
    fi
    kill -TERM "$wpid" 2>/dev/null || true
    local rc=0
    wait "$wpid" || rc=$?
    [ "$rc" -eq 0 ] || fail "$unit: exit status $rc after SIGTERM; log: $(tail -n 5 "$tmp/watcher.log")"
}

check_cycle drover-director@.service status
check_cycle drover-decap@.service decap stats

[ "$fails" -eq 0 ]
