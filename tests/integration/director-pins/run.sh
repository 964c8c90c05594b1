#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `ip netns exec` gives every command a fresh /sys and mount namespace: a
# bpffs the director mounts on /sys/fs/bpf there ends with the command, and
# the pins with it. attach must say so (warning naming --pin-root), and with
# --pin-root on a bpffs mounted in the host namespace the pins must stay.
# Uses `decap attach` on the lo of a namespace of its own (generic XDP).
# usage: run.sh DROVER_DIRECTOR
set -u
DIRECTOR=$1
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (netns, bpffs, XDP)"; exit 77; }
command -v ip >/dev/null || { echo "SKIP: no ip(8)"; exit 77; }
NS=drv-pins-$$
TMP=$(mktemp -d "${TMPDIR:-/tmp}/drover-pins.XXXXXX") || exit 1
cleanup() {
    ip netns del "$NS" 2>/dev/null # takes lo and its XDP program with it
    umount "$TMP/bpffs" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*"; for f in "$TMP"/*.err; do echo "== $f"; cat "$f"; done; exit 1; }

ip netns add "$NS" || { echo "SKIP: cannot create a network namespace"; exit 77; }
ip -n "$NS" link set lo up

# 1. default pin root: /sys/fs/bpf in the command's own mount namespace
ip netns exec "$NS" "$DIRECTOR" decap attach --dev lo --mode generic 2>"$TMP/attach.err" ||
    fail "decap attach with the default pin root failed"
grep -q 'level=warn.*pins vanish when this command exits.*--pin-root' "$TMP/attach.err" ||
    fail "attach on a bpffs of its own mount namespace did not warn that the pins vanish"
# what the warning is about: the next command finds no pins
if ip netns exec "$NS" "$DIRECTOR" decap stats --dev lo >/dev/null 2>"$TMP/stats.err"; then
    fail "pins survived the command's mount namespace: the warning is wrong here"
fi
ip netns exec "$NS" "$DIRECTOR" decap detach --dev lo --force 2>"$TMP/detach.err" || true
ip netns exec "$NS" ip link set dev lo xdpgeneric off 2>/dev/null

# 2. --pin-root on a bpffs mounted in the host namespace: no warning, pins stay
mkdir -p "$TMP/bpffs"
mount -t bpf bpf "$TMP/bpffs" || fail "cannot mount a bpffs on $TMP/bpffs"
ip netns exec "$NS" "$DIRECTOR" decap attach --dev lo --mode generic --pin-root "$TMP/bpffs" \
    2>"$TMP/attach2.err" || fail "decap attach --pin-root failed"
if grep -q 'level=warn' "$TMP/attach2.err"; then fail "warning with a persistent --pin-root"; fi
ip netns exec "$NS" "$DIRECTOR" decap stats --dev lo --pin-root "$TMP/bpffs" >/dev/null \
    2>"$TMP/stats2.err" || fail "pins under --pin-root not found by a later command"
ip netns exec "$NS" "$DIRECTOR" decap detach --dev lo --pin-root "$TMP/bpffs" 2>"$TMP/detach2.err" ||
    fail "decap detach --pin-root failed"
echo "director pins ok"
