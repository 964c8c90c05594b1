#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# faults_process_death: processes of the fleet die under load through the
# VIP (issue 14). The proxies' drover-watcher runs their HAProxy instances
# (--haproxy-run) and the director checks each proxy host through its
# watcher's /readyz (every HAProxy service of the host up). One at a time:
#   haproxy_worker     kill -9 of the `web` HAProxy worker on proxy-1 (the
#                      2.6 master exits with it); the watcher starts it again
#   haproxy_master     kill -9 of the `web` HAProxy master on proxy-1
#   haproxy_crashloop  the `web` HAProxy on proxy-1 killed again each time it
#                      comes back, until the director has taken proxy-1 out
#                      of its rows; then left alone
#   director_freeze    SIGSTOP of the director's drover-watcher while one of
#                      its checks is unanswered, for twice the time its
#                      checks take to judge a proxy down, then SIGCONT: that
#                      check counts late, no proxy is marked down, the
#                      status entry keeps its session
#   director_kill      kill -9 of the director's drover-watcher (XDP stays
#                      attached and forwards); started again 3 s later, as
#                      systemd would
#   haproxy_stuck      the `web` HAProxy worker on proxy-2 (one thread)
#                      blocked in the Lua CLI command `hang` (alive, not
#                      stopped, its sockets queueing, answering nothing)
#                      until the director has taken proxy-2 out of its rows
#                      (its /readyz says the worker does not answer its
#                      stats socket), then released
#   haproxy_freeze     SIGSTOP of the `web` HAProxy worker on proxy-2 until
#                      the director has taken proxy-2 out of its rows
#                      (its /readyz says the worker is stopped), then SIGCONT
# Judged per fault, over FAULTS_WINDOW_S (10 s) from the kill: failed
# requests <= 2 % of port 80's requests (the killed service; haproxy_stuck:
# at most the port-80 requests its rows take before the director can have
# moved them, STUCK_BUDGET below), none on port 8080; every director row
# whose primary was not the host at fault (proxy-1; proxy-2 for
# haproxy_stuck and haproxy_freeze) keeps its primary all along (sampled),
# so only the dead host's rows move, and with the crash loop, the stuck
# worker and the HAProxy freeze all of them do; the director_kill and
# director_freeze tables stay byte-identical and they fail no request at
# all (the kernel forwards without the watcher). The freezes and the stuck
# worker are judged over windows derived from the health options instead
# of 10 s.
# Then back to the baseline (faults_run). BENCH lines: faults_<fault>_failed,
# _recovery_s (faults_run: repair -> baseline), _serving_s (kill -> the
# watcher sees HAProxy run again; the python rig haproxy_supervise.py
# asserts <= 1 s), and faults_haproxy_recovery_s (the slower _serving_s of
# the worker and the master kill).
# The proxies' HAProxy runs through tests/faults/haproxy_hang.sh (one
# thread, and the Lua command `hang` haproxy_stuck blocks a worker with:
# this rig only, never the product's templates).
# usage: faults_process_death.sh BUILD-DIR [FAULT...]   (default: all, in this order)
set -euo pipefail
# shellcheck disable=SC2034 # read by scripts/fleet/lib.sh
FLEET_HAPROXY_BIN=$(cd "$(dirname "$0")" && pwd)/haproxy_hang.sh
. "$(dirname "$0")/lib.sh"
faults_main "$1"
shift
only=" ${*:-haproxy_worker haproxy_master haproxy_stuck director_freeze director_kill haproxy_freeze haproxy_crashloop} "
pick() { case "$only" in *" $1 "*) faults_run "$@" ;; esac; }

FAULTS_WINDOW_S=${FAULTS_WINDOW_S:-10}
# faults_run's own count also covers the recovery after the window: 2 % of
# what the ~50 requests/s of port 80 send in the window, and a margin
BUDGET=$((FAULTS_WINDOW_S * 50 * 2 / 100 + 2))
DEAD=proxy-1
DEAD_IP=$(fleet_proxy_ip "$DEAD")

# hap_pid PROXY SERVICE master|worker: the pid the master CLI lists;
# nothing (and success) while no HAProxy answers there
hap_pid() {
    local procs
    procs=$(fleet_testlib haproxy "$FLEET_STATE/$1/$2.master" "show proc" 2>/dev/null) || return 0
    awk -v t="$3" '$1 ~ /^[0-9]+$/ && $2 == t { print $1; exit }' <<<"$procs"
}

requests80() { echo $(($(fleet_count load80 ok) + $(fleet_count load80 failed))); }

rows_dump() { # FILE: "row primary secondary" of the table in force
    fleet_nsx director "$FLEET_BIN_DIRECTOR" table dump --dev eth0 \
        --pin-root "$FLEET_STATE/bpffs/director" | grep -v '^#' >"$1"
}

rows_of() { awk -v d="$1" '$2 == d { n++ } END { print n + 0 }' "$2"; } # PROXY-IP ROWS-FILE: its rows

# rows_moved BEFORE NOW: how many rows changed primary; fails (naming one)
# when a row whose primary was not $DEAD changed it
rows_moved() {
    awk -v dead="$DEAD_IP" 'NR == FNR { p[$1] = $2; next }
        p[$1] != $2 { if (p[$1] != dead) { print "row " $1 ": " p[$1] " -> " $2 > "/dev/stderr"; bad = 1 } n++ }
        END { print n + 0; exit bad }' "$1" "$2"
}

# The window after a kill: sample the rows (and run CHECK on every sample:
# it fails the test itself), count the requests; judge.
# Globals set: MOVED_MAX (most rows moved at once)
judge_window() { # NAME T-KILL F80-BEFORE N80-BEFORE F8080-BEFORE [CHECK]
    local name=$1 t0=$2 f0=$3 n0=$4 g0=$5 check=${6:-} moved f n g
    MOVED_MAX=0
    while awk -v a="$t0" -v b="$(date +%s.%N)" -v w="$FAULTS_WINDOW_S" 'BEGIN { exit !(b - a < w) }'; do
        rows_dump "$FLEET_STATE/rows.now"
        moved=$(rows_moved "$FLEET_STATE/rows.base" "$FLEET_STATE/rows.now") ||
            fleet_die "$name: a row whose primary was not $DEAD changed (above)"
        [ "$moved" -le "$MOVED_MAX" ] || MOVED_MAX=$moved
        [ -z "$check" ] || "$check"
        sleep 0.3
    done
    f=$(($(fleet_count load80 failed) - f0))
    n=$(($(requests80) - n0))
    g=$(($(fleet_count load8080 failed) - g0))
    faults_log "$name: port 80: $f of $n requests failed in ${FAULTS_WINDOW_S}s; port 8080: $g failed; at most $MOVED_MAX rows moved"
    if [ -n "${WINDOW_MAX_FAILED:-}" ]; then # a bound the fault derives itself
        [ "$f" -le "$WINDOW_MAX_FAILED" ] ||
            fleet_die "$name: $f of $n port-80 requests failed (> $WINDOW_MAX_FAILED)"
    else
        [ $((f * 100)) -le $((n * 2)) ] || fleet_die "$name: $f of $n port-80 requests failed (> 2 %)"
    fi
    [ "$g" = 0 ] || fleet_die "$name: $g port-8080 requests failed (its HAProxy was not touched)"
}

# serving again: the master CLI lists a new master with a worker
serving_again() { # OLD-MASTER
    local m
    m=$(hap_pid "$DEAD" web master)
    [ -n "$m" ] && [ "$m" != "$1" ] && [ -n "$(hap_pid "$DEAD" web worker)" ]
}

# Seconds from T0 (the kill) to the first time the proxy's watcher saw web's
# HAProxy running again (its log line; probed every 100 ms): the wall
# clock of both, without the test's own polling delays
serving_s() { # T0
    local ts t
    while read -r ts; do
        t=$(date -d "$ts" +%s.%N)
        if awk -v a="$1" -v b="$t" 'BEGIN { exit !(b > a) }'; then
            awk -v a="$1" -v b="$t" 'BEGIN { printf "%.2f\n", b - a }'
            return
        fi
    done < <(grep 'service web: HAProxy runs again' "$FLEET_STATE/$DEAD-watcher.log" |
        sed 's/^ts=\([^ ]*\) .*/\1/')
    fleet_die "no 'HAProxy runs again' line for web after the kill in $DEAD's watcher log"
}

kill_haproxy() { # NAME master|worker
    local name=$1 m pid t0 f0 n0 g0
    m=$(hap_pid "$DEAD" web master)
    pid=$(hap_pid "$DEAD" web "$2")
    [ -n "$m" ] && [ -n "$pid" ] || fleet_die "$name: no HAProxy $2 of web on $DEAD"
    rows_dump "$FLEET_STATE/rows.base"
    f0=$(fleet_count load80 failed) n0=$(requests80) g0=$(fleet_count load8080 failed)
    t0=$(date +%s.%N)
    kill -KILL "$pid"
    fleet_wait "$name: the watcher on $DEAD starts web's HAProxy again" 10 serving_again "$m"
    SERVING_S=$(serving_s "$t0")
    echo "BENCH faults_${name}_serving_s $SERVING_S"
    awk -v a="$SERVING_S" -v b="${SERVING_MAX:-0}" 'BEGIN { exit !(a > b) }' && SERVING_MAX=$SERVING_S
    judge_window "$name" "$t0" "$f0" "$n0" "$g0"
}

haproxy_worker() { kill_haproxy haproxy_worker worker; }
haproxy_master() { kill_haproxy haproxy_master master; }

director_down() { # PROXY: the director counts PROXY unhealthy
    fleet_director_status | awk -v h="$1" '$1 == h && $4 != "up" { f = 1 } END { exit !f }'
}

haproxy_crashloop() {
    local t0 f0 n0 g0 end pid own
    rows_dump "$FLEET_STATE/rows.base"
    own=$(rows_of "$DEAD_IP" "$FLEET_STATE/rows.base")
    f0=$(fleet_count load80 failed) n0=$(requests80) g0=$(fleet_count load8080 failed)
    t0=$(date +%s.%N)
    # health fall 2 x 500 ms after /readyz turns 503 (docs/director-watcher.md)
    # killed again each time it comes back until the table in force has
    # every row of $DEAD moved (a HAProxy left alone earlier would be back
    # before the table follows)
    end=$(($(date +%s) + 30))
    until out_of_rows "$own"; do
        [ "$(date +%s)" -lt "$end" ] ||
            fleet_die "haproxy_crashloop: the director never moved every row of $DEAD away (30 s)"
        pid=$(hap_pid "$DEAD" web worker)
        [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
        sleep 0.05
    done
    faults_log "haproxy_crashloop: $DEAD out of the rows ($own rows moved) after $(elapsed_s "$t0") s; HAProxy left alone"
    judge_window haproxy_crashloop "$t0" "$f0" "$n0" "$g0"
}
out_of_rows() { director_down "$DEAD" && all_moved "$1"; } # ROWS-OF-DEAD
all_moved() { # ROWS-OF-DEAD
    local moved
    rows_dump "$FLEET_STATE/rows.now"
    moved=$(rows_moved "$FLEET_STATE/rows.base" "$FLEET_STATE/rows.now") || return 1
    [ "$moved" = "$1" ]
}

director_kill() {
    local pid t0 f0 n0 g0
    rows_dump "$FLEET_STATE/rows.base"
    f0=$(fleet_count load80 failed) n0=$(requests80) g0=$(fleet_count load8080 failed)
    pid=$(fleet_pid director-watcher)
    t0=$(date +%s.%N)
    kill -KILL "$pid"
    fleet_wait "director_kill: the director's watcher exits" 10 fleet_not_running "$pid"
    sleep 3
    fleet_director_watcher_start
    judge_window director_kill "$t0" "$f0" "$n0" "$g0"
    table_kept director_kill "$f0" "$g0"
}

# After a fault of the director's watcher (judged by judge_window): no row
# moved, the table in force byte-identical, not one request failed (the
# kernel forwards without the watcher)
table_kept() { # NAME F80-BEFORE F8080-BEFORE
    [ "$MOVED_MAX" = 0 ] || fleet_die "$1: $MOVED_MAX rows moved"
    rows_dump "$FLEET_STATE/rows.now"
    cmp -s "$FLEET_STATE/rows.base" "$FLEET_STATE/rows.now" ||
        fleet_die "$1: the table in force differs once the director's watcher runs again"
    if [ "$(fleet_count load80 failed)" != "$2" ] || [ "$(fleet_count load8080 failed)" != "$3" ]; then
        fleet_die "$1: requests failed while the director's watcher was down or frozen"
    fi
}

# ---- frozen processes (SIGSTOP ... SIGCONT: a host swapping, a stuck disk) ----

# FALL_MS: the longest the director's checks take to judge a proxy that
# stopped answering down (the first failing check ends within one interval
# plus the timeout, then FALL - 1 more intervals)
FALL_MS=$((FLEET_HEALTH_FALL * FLEET_HEALTH_INTERVAL_MS + FLEET_HEALTH_TIMEOUT_MS))
RISE_MS=$((FLEET_HEALTH_RISE * FLEET_HEALTH_INTERVAL_MS))
ms_to_s() { awk -v m="$1" 'BEGIN { printf "%.3f\n", m / 1000 }'; }
elapsed_s() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

# director_metric NAME: NAME's value summed over its labels, from the
# director watcher's /metrics
director_metric() {
    fleet_nsx director curl -sf --max-time 2 http://127.0.0.1:9109/metrics |
        awk -v k="$1" '$1 == k || index($1, k "{") == 1 { s += $2 } END { print s + 0 }'
}

# The director's status entry in KV (status/<host>/director, written on a
# session of its own): "SESSION-ID" while it exists and its session is alive
DIR_STATUS_KEY=status/director/director
dir_status_session() {
    local id
    id=$(curl -sf --max-time 2 "$FLEET_CONSUL/v1/kv/drover/v1/$DIR_STATUS_KEY" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)[0].get("Session") or "")') || return 1
    [ -n "$id" ] && curl -sf --max-time 2 "$FLEET_CONSUL/v1/session/info/$id" |
        python3 -c 'import json, sys; sys.exit(not any(s["ID"] == sys.argv[1] for s in json.load(sys.stdin) or []))' "$id" &&
        echo "$id"
}
dir_status_is() { [ "$(dir_status_session)" = "$1" ]; }

every_proxy_up() { # the director counts every proxy healthy (sampled)
    fleet_director_status | awk '$1 ~ /^proxy-/ && $4 != "up" { print $1 " " $4; f = 1 } END { exit f }' >&2 ||
        fleet_die "director_freeze: the director marked a proxy down (above) around its own freeze"
}

# The director's address, to which $DEAD's packets are blackholed
DIR_IP=10.93.2.2

# stop_in_check PID: blackhole what $DEAD sends to the director, then
# SIGSTOP PID (the director's watcher) as soon as one of its checks of
# $DEAD is seen connecting (SYN-SENT in the director's /proc/net/tcp;
# polled every 2 ms, so well within the check's timeout) and print that
# connection's local port; fails (the blackhole lifted) after 5 check
# intervals without one. The poller is running before the blackhole goes
# in: a poller that starts late on a busy machine misses the connecting
# check, which then fails for real.
stop_in_check() {
    fleet_nsx director python3 -c '
import os, signal, socket, struct, subprocess, sys, time
pid, ip, port, wait = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
want = "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(ip))[0], port)
subprocess.run(sys.argv[5:], check=True)
end = time.monotonic() + wait
while time.monotonic() < end:
    with open("/proc/net/tcp") as f:
        for w in (l.split() for l in f.readlines()[1:]):
            if w[2] == want and w[3] == "02":
                os.kill(pid, signal.SIGSTOP)
                print(int(w[1].split(":")[1], 16))
                sys.exit(0)
    time.sleep(0.002)
sys.exit(1)' "$1" "$DEAD_IP" "$FLEET_WATCHER_PORT" "$(ms_to_s $((5 * FLEET_HEALTH_INTERVAL_MS)))" \
        ip -n "$(fleet_ns "$DEAD")" route add blackhole "$DIR_IP/32" || {
        ip -n "$(fleet_ns "$DEAD")" route del blackhole "$DIR_IP/32" || true
        return 1
    }
}

# The director's drover-watcher frozen for twice FALL_MS, so that checks
# starved by its own stall, if judged, would take proxies out. A frozen
# watcher's checks mostly have their answer waiting in the socket when it
# wakes (judged in time), so the test makes one be unanswered: $DEAD's
# packets to the director are blackholed until a check is seen connecting
# and the watcher is stopped within that check's timeout; during the
# freeze the blackhole narrows to that one connection (its port), so its
# handshake cannot complete and be answered before it is judged on
# waking, while the checks after it connect anew and are answered. The
# director keeps its connection to $DEAD's watcher alive between checks,
# so the check that goes out on it first under the blackhole fails for
# real (1 of FALL: that is what makes the next check connect anew, and be
# seen connecting); the frozen check judged failed would be the FALL-th
# and take $DEAD out. It must count late instead (the stop lands in the
# loop's wait for I/O right after the connect, which loop_lag must see as
# a stall), no proxy may be marked down, the table stays byte-identical,
# no request fails (XDP forwards without the watcher, as in
# director_kill), and the status entry keeps its session (renewed on
# waking; the TTL is 15 s).
director_freeze() {
    local pid t0 f0 n0 g0 late0 late1 sess freeze_s port
    freeze_s=$(ms_to_s $((2 * FALL_MS)))
    rows_dump "$FLEET_STATE/rows.base"
    sess=$(dir_status_session) || fleet_die "director_freeze: no live status entry $DIR_STATUS_KEY before the freeze"
    late0=$(director_metric drover_watcher_director_health_checks_late_total)
    f0=$(fleet_count load80 failed) n0=$(requests80) g0=$(fleet_count load8080 failed)
    pid=$(fleet_pid director-watcher)
    port=$(stop_in_check "$pid") ||
        fleet_die "director_freeze: no director check of $DEAD seen connecting in 5 intervals of $FLEET_HEALTH_INTERVAL_MS ms"
    t0=$(date +%s.%N)
    ip -n "$(fleet_ns "$DEAD")" rule add to "$DIR_IP/32" ipproto tcp dport "$port" blackhole pref 100
    ip -n "$(fleet_ns "$DEAD")" route del blackhole "$DIR_IP/32"
    every_proxy_up
    sleep "$freeze_s"
    every_proxy_up
    kill -CONT "$pid"
    faults_log "director_freeze: watcher stopped for $(elapsed_s "$t0") s"
    # the judgement of the late check and the next ones: within FALL_MS
    FAULTS_WINDOW_S=$(ms_to_s $((3 * FALL_MS))) judge_window director_freeze "$t0" "$f0" "$n0" "$g0" every_proxy_up
    ip -n "$(fleet_ns "$DEAD")" rule del pref 100
    table_kept director_freeze "$f0" "$g0"
    late1=$(director_metric drover_watcher_director_health_checks_late_total)
    faults_log "director_freeze: checks counted late: $((late1 - late0))"
    if [ "$late1" -le "$late0" ]; then
        grep 'health check' "$FLEET_STATE/director-watcher.log" | tail -n 5 >&2
        fleet_die "director_freeze: drover_watcher_director_health_checks_late_total did not rise ($late0; the watcher's last check lines above)"
    fi
    # a renewal due during the freeze goes out on waking; a failed one is
    # retried within 1.5 s (watcher/host_status.h)
    fleet_wait "director_freeze: $DIR_STATUS_KEY held by its session $sess, alive" 5 dir_status_is "$sess"
}

# One proxy host's `web` HAProxy worker frozen: the master still lists it,
# its listening socket still takes connections into the backlog, and none
# is answered. The proxy's /readyz must turn 503 (the watcher sees the
# worker stopped), the director take the host out after FALL_MS (its rows
# to the other proxy; connections already in the backlog keep reaching it
# through second chance and are answered once it runs again), and put it
# back after SIGCONT within RISE_MS. proxy-2 here: proxy-1's flap damping
# belongs to the crash loop.
haproxy_freeze() {
    local DEAD=proxy-2 DEAD_IP pid own t0 f0 n0 g0 bound
    DEAD_IP=$(fleet_proxy_ip "$DEAD")
    pid=$(hap_pid "$DEAD" web worker)
    [ -n "$pid" ] || fleet_die "haproxy_freeze: no HAProxy worker of web on $DEAD"
    rows_dump "$FLEET_STATE/rows.base"
    own=$(rows_of "$DEAD_IP" "$FLEET_STATE/rows.base")
    f0=$(fleet_count load80 failed) n0=$(requests80) g0=$(fleet_count load8080 failed)
    t0=$(date +%s.%N)
    kill -STOP "$pid"
    # the watcher's probe (100 ms), FALL_MS, the table build: bounded by 4 x
    # FALL_MS on a busy machine
    bound=$(((4 * FALL_MS + 999) / 1000))
    fleet_wait "haproxy_freeze: the director moves every row of $DEAD ($own) away from its frozen worker" \
        "$bound" out_of_rows "$own"
    faults_log "haproxy_freeze: $DEAD out of the rows after $(elapsed_s "$t0") s"
    kill -CONT "$pid"
    FAULTS_WINDOW_S=$(ms_to_s $((4 * FALL_MS + 2 * RISE_MS))) judge_window haproxy_freeze "$t0" "$f0" "$n0" "$g0"
}

# ---- a stuck worker (alive, running, answering nothing) ----

# STUCK_MS: the longest a stuck worker keeps its host in the director's
# rows. The proxy's watcher pings each service's worker (`show info` on
# its stats socket) on its probe, every FLEET_HAPROXY_PROBE_MS, one ping
# in flight at a time, each bounded by 4 probe intervals; 3 missed in a
# row make the service mute (/readyz 503). The first ping goes out within
# one interval of the block and every later one on the probe after the
# miss before it, so the 3rd miss ends within 3 x (4 + 1) intervals; then
# the director's checks judge the host down within FALL_MS.
STUCK_MS=$((3 * (4 + 1) * FLEET_HAPROXY_PROBE_MS + FALL_MS))
LOAD_RATE=50 # port 80's requests per second (scripts/fleet/load.py RATE)

# stuck_budget: the failed requests haproxy_stuck may cost. Every
# connection the stuck worker takes waits in its backlog; a worker that
# stayed stuck would fail them all, and none after the director moved its
# rows away. So at worst every port-80 request whose row points at
# proxy-2 for STUCK_MS fails: LOAD_RATE x STUCK_MS x proxy-2's share of
# the rows in force, rounded up (about 73 of the ~145 port-80 requests of
# STUCK_MS). The test releases the worker once the host is out, and the
# queued connections (they still reach it through second chance) are
# answered: one fails only when that comes later than the client's 4 s
# timeout, on a slow machine.
stuck_budget() {
    local own all
    rows_dump "$FLEET_STATE/rows.budget"
    own=$(rows_of "$(fleet_proxy_ip proxy-2)" "$FLEET_STATE/rows.budget")
    all=$(wc -l <"$FLEET_STATE/rows.budget")
    echo $(((LOAD_RATE * STUCK_MS * own + 1000 * all - 1) / (1000 * all)))
}

# While the director has proxy-2 out: its /readyz blames web's stats
# socket, and web's worker runs (not stopped: that is haproxy_freeze's
# fault). Quick (no python): the worker is released right after.
stuck_is_why() { # PROXY WORKER-PID
    local ready state
    ready=$(fleet_nsx "$1" curl -s --max-time 2 "http://127.0.0.1:$FLEET_WATCHER_PORT/readyz") || true
    grep -q 'HAProxy of service web does not answer its stats socket' <<<"$ready" ||
        fleet_die "haproxy_stuck: $1's /readyz does not blame web's stats socket: $ready"
    state=$(fleet_proc_stat "$2" 1)
    case $state in
    T | t) fleet_die "haproxy_stuck: web's worker (pid $2) on $1 is stopped ($state), not stuck" ;;
    "") fleet_die "haproxy_stuck: web's worker (pid $2) on $1 is gone, not stuck" ;;
    esac
}

# One proxy host's `web` worker blocked in a Lua CLI command (one thread:
# the whole worker) until the director has taken the host out, then
# released at once (every second it stays blocked ages the requests in its
# backlog); the hang ends by itself after hang_s in any case. proxy-2 as
# for haproxy_freeze (proxy-1's flap damping belongs to the crash loop).
haproxy_stuck() {
    local DEAD=proxy-2 DEAD_IP pid own t0 f0 n0 g0 bound hang_s release
    DEAD_IP=$(fleet_proxy_ip "$DEAD")
    pid=$(hap_pid "$DEAD" web worker)
    [ -n "$pid" ] || fleet_die "haproxy_stuck: no HAProxy worker of web on $DEAD"
    rows_dump "$FLEET_STATE/rows.base"
    own=$(rows_of "$DEAD_IP" "$FLEET_STATE/rows.base")
    # STUCK_MS, the table build and a busy machine: bounded by 3 x STUCK_MS;
    # the hang outlives that wait, so only the test releases it in time
    bound=$(((3 * STUCK_MS + 999) / 1000))
    hang_s=$((bound + 2))
    release=$FLEET_STATE/web-hang.release
    : >"$release"
    echo "hang $hang_s $release" >"$FLEET_STATE/web-hang.cmd"
    f0=$(fleet_count load80 failed) n0=$(requests80) g0=$(fleet_count load8080 failed)
    t0=$(date +%s.%N)
    # socat, not python: blocked within milliseconds of t0 on a busy
    # machine too; it waits for the answer (up to hang_s) on its own
    fleet_bg web-hang socat -t "$hang_s" "OPEN:$FLEET_STATE/web-hang.cmd" "UNIX-CONNECT:$FLEET_STATE/$DEAD/web.sock"
    fleet_wait "haproxy_stuck: the director moves every row of $DEAD ($own) away from its stuck worker" \
        "$bound" out_of_rows "$own"
    stuck_is_why "$DEAD" "$pid"
    rm -f "$release"
    faults_log "haproxy_stuck: $DEAD out of the rows after $(elapsed_s "$t0") s; web's worker released"
    [ "$(hap_pid "$DEAD" web worker)" = "$pid" ] ||
        fleet_die "haproxy_stuck: web's worker on $DEAD is no longer pid $pid (restarted, not stuck)"
    FAULTS_WINDOW_S=$(ms_to_s $((2 * STUCK_MS + 2 * RISE_MS))) WINDOW_MAX_FAILED=$STUCK_BUDGET \
        judge_window haproxy_stuck "$t0" "$f0" "$n0" "$g0"
}

pick haproxy_worker "$BUDGET" haproxy_worker
pick haproxy_master "$BUDGET" haproxy_master
[ -z "${SERVING_MAX:-}" ] || echo "BENCH faults_haproxy_recovery_s $SERVING_MAX"
# haproxy_stuck and haproxy_freeze each take proxy-2 out and back (two
# changes, a flap penalty of 2000 at the director, halved every 30 s): a
# minute apart at least, or the second would be damped (above 2500) and
# held out for most of a minute. director_kill between them restarts the
# director's watcher, whose penalties start again at 0.
if [[ $only == *" haproxy_stuck "* ]]; then
    STUCK_BUDGET=$(stuck_budget)
    pick haproxy_stuck "$STUCK_BUDGET" haproxy_stuck
fi
# before director_kill: the killed run's session holds the status entry
# until its TTL runs out, and director_freeze checks the entry's session
pick director_freeze 0 director_freeze
pick director_kill 0 director_kill
pick haproxy_freeze "$BUDGET" haproxy_freeze
# last: it flaps proxy-1 at the director, whose flap damping would hold a
# fault after it
pick haproxy_crashloop "$BUDGET" haproxy_crashloop
echo "faults_process_death: ok"
