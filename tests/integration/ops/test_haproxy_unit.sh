#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs haproxy@.service's ExecStartPre and ExecStart as systemd would
# (%i = web; ${CONFIG}, ${MASTER} pointed at a temp dir, ${PROCESS} at
# deploy/haproxy/process.cfg) on a small config with a stats socket, in a
# network namespace of its own, and checks: the check passes, the master
# CLI answers `show proc` with a worker that runs as the haproxy user in
# its chroot, the frontend serves, and a worker killed with -9 takes the
# master with it (FACTS.md: why the unit restarts it, and the watcher
# probes for it).
#   test_haproxy_unit.sh UNIT_DIR PROCESS_CFG
# Needs root, unshare(1), ip(8), haproxy, the haproxy user; 77 without them.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 UNIT_DIR PROCESS_CFG" >&2; exit 2; }
unit=$1/haproxy@.service process=$2
testlib=$(dirname "$0")/../../lib/drover_testlib.py
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! command -v unshare >/dev/null ||
    ! command -v haproxy >/dev/null || ! id haproxy >/dev/null 2>&1 || [ ! -d /var/lib/haproxy ]; then
    echo "SKIP: needs root, ip(8), unshare(1), haproxy and the Debian haproxy user and chroot"
    exit 77
fi
if [ -z "${DROVER_OPS_UNSHARED:-}" ]; then
    exec unshare --net env DROVER_OPS_UNSHARED=1 "$0" "$@"
fi
ip link set lo up
tmp=$(mktemp -d /tmp/drover-ops-haproxy.XXXXXX)
master_pid=
cleanup() {
    [ -n "$master_pid" ] && kill "$master_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/haproxy.log" ] && tail -20 "$tmp/haproxy.log" >&2; exit 1; }

cat >"$tmp/web.cfg" <<CFG
global
    stats socket $tmp/web.sock mode 600 level admin expose-fd listeners
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe_web
    bind 127.0.0.1:18080
    http-request return status 200 content-type text/plain string ok
CFG
# the unit's command lines, with its variables expanded the way systemd does
cmd() {
    sed -n "s/^$1=//p" "$unit" | sed -e "s|\${CONFIG}|$tmp/web.cfg|g" \
        -e "s|\${PROCESS}|$process|g" -e "s|\${MASTER}|$tmp/web.master|g"
}
pre=$(cmd ExecStartPre) start=$(cmd ExecStart)
[ -n "$pre" ] && [ -n "$start" ] || fail "no ExecStartPre/ExecStart in $unit"
case "$start" in *" -Ws "*) ;; *) fail "ExecStart is not master-worker under systemd (-Ws): $start" ;; esac
grep -q '^Restart=always' "$unit" || fail "no Restart=always"
$pre >"$tmp/check.log" 2>&1 || { cat "$tmp/check.log" >&2; fail "ExecStartPre refused the config: $pre"; }
$start >"$tmp/haproxy.log" 2>&1 &
master_pid=$!
workers() {
    python3 "$testlib" haproxy "$tmp/web.master" "show proc" 2>/dev/null |
        awk '$2 == "worker" { print $1 }'
}
for _ in $(seq 100); do
    w=$(workers || true)
    [ -n "$w" ] && break
    kill -0 "$master_pid" 2>/dev/null || fail "HAProxy exited at start"
    sleep 0.05
done
[ -n "$w" ] || fail "no worker in show proc on $tmp/web.master within 5 s"
user=$(ps -o user= -p "$w" | tr -d ' ')
[ "$user" = haproxy ] || fail "worker $w runs as $user, not haproxy"
root=$(readlink "/proc/$w/root")
[ "$root" = /var/lib/haproxy ] || fail "worker $w is chrooted to $root, not /var/lib/haproxy"
body=$(python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:18080/", timeout=5).read().decode())')
[ "$body" = ok ] || fail "frontend answered '$body'"
kill -9 "$w"
for _ in $(seq 100); do
    kill -0 "$master_pid" 2>/dev/null || break
    sleep 0.05
done
kill -0 "$master_pid" 2>/dev/null && fail "master still running 5 s after its worker was killed"
master_pid=
echo "haproxy@.service: check, start (-Ws, worker as haproxy in /var/lib/haproxy), serve; a killed worker ends the master: ok"
