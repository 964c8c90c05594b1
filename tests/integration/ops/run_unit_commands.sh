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
#   run_unit_commands.sh UNIT_DIR DROVER_DIRECTOR
# Needs root, unshare(1), ip(8); 77 (skip) without them.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 UNIT_DIR DROVER_DIRECTOR" >&2; exit 2; }
units=$1 bin=$2
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
trap 'rm -rf "$tmp"' EXIT
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
unit_cmds() {
    sed -n "s/^$2=//p" "$units/$1" |
        sed -e "s|%i|$dev|g" -e "s|/usr/local/sbin/drover-director|$bin|g" \
            -e "s|/etc/drover/|$tmp/|g" -e 's|\$DROVER_[A-Z_]*ARGS||g'
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
    run_key "$unit" ExecStop || return 0
    if xdp_on; then fail "$unit: XDP program still on $dev after ExecStop"; fi
    if [ -n "$(ls -A "$pins" 2>/dev/null)" ]; then
        fail "$unit: pins left after ExecStop: $(ls "$pins")"
    fi
    echo "ok   $unit: attached, answered '$*', detached, pins gone"
}

check_cycle drover-director@.service status
check_cycle drover-decap@.service decap stats

[ "$fails" -eq 0 ]
