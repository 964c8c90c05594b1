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
master_pid= slow_pid=
cleanup() {
    [ -n "$master_pid" ] && kill "$master_pid" 2>/dev/null || true
    [ -n "$slow_pid" ] && kill "$slow_pid" 2>/dev/null || true
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
    timeout client 30s
    timeout server 30s
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

# A planned stop (the unit's KillSignal to the master, as systemctl stop
# sends it): listeners close at once, the request in flight finishes, the
# master exits 0.
kill_signal=$(sed -n 's/^KillSignal=//p' "$unit")
[ "$kill_signal" = SIGUSR1 ] || fail "KillSignal is '$kill_signal', not HAProxy's soft stop SIGUSR1"
python3 - "$tmp" <<'PY' &
import http.server, os, sys, time
class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        open(sys.argv[1] + "/slow.inflight", "w").close()
        # in flight when the stop comes and the listener closes: answer
        # once the test saw both (a fixed 1.5 s could end before a busy
        # machine got there); 25 s guards against a test that died
        end = time.monotonic() + 25
        while not os.path.exists(sys.argv[1] + "/slow.stopped") and time.monotonic() < end:
            time.sleep(0.02)
        self.send_response(200)
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"slow")
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 18081), Slow)
open(sys.argv[1] + "/slow.ready", "w").close()
s.serve_forever()
PY
slow_pid=$!
cat >>"$tmp/web.cfg" <<CFG
frontend fe_slow
    bind 127.0.0.1:18082
    default_backend be_slow
backend be_slow
    server s1 127.0.0.1:18081
CFG
$start >"$tmp/haproxy.log" 2>&1 &
master_pid=$!
up=
for _ in $(seq 200); do
    if [ -f "$tmp/slow.ready" ] && (exec 3<>/dev/tcp/127.0.0.1/18082) 2>/dev/null; then up=1; break; fi
    kill -0 "$master_pid" 2>/dev/null || fail "HAProxy exited at its second start"
    sleep 0.05
done
[ -n "$up" ] || fail "fe_slow (127.0.0.1:18082) and the slow server not up within 10 s"
python3 - >"$tmp/inflight" 2>&1 <<'PY' &
import urllib.request
print(urllib.request.urlopen("http://127.0.0.1:18082/", timeout=20).read().decode())
PY
client=$!
for _ in $(seq 200); do
    [ -f "$tmp/slow.inflight" ] && break
    kill -0 "$client" 2>/dev/null || fail "the request ended before the stop: $(cat "$tmp/inflight")"
    sleep 0.05
done
[ -f "$tmp/slow.inflight" ] || fail "the request did not reach the slow server within 10 s"
kill -s "${kill_signal#SIG}" "$master_pid"
refused=
for _ in $(seq 100); do
    if ! (exec 3<>/dev/tcp/127.0.0.1/18082) 2>/dev/null; then refused=1; break; fi
    sleep 0.05
done
[ -n "$refused" ] || fail "the listener still accepts 5 s after the soft stop"
: >"$tmp/slow.stopped" # the listener closed with the request still in flight: let it finish
wait "$client" || fail "the request in flight failed on the soft stop: $(cat "$tmp/inflight")"
[ "$(cat "$tmp/inflight")" = slow ] || fail "the request in flight got '$(cat "$tmp/inflight")'"
rc=0
wait "$master_pid" || rc=$?
master_pid=
[ "$rc" = 0 ] || fail "master exited $rc after the soft stop, not 0"
echo "haproxy@.service: check, start (-Ws, worker as haproxy in /var/lib/haproxy), serve; a killed worker ends the master; a stop finishes the request in flight and exits 0: ok"
