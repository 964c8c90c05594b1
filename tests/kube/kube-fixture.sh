#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Start, stop and drive the Kubernetes API fixture (kube-fixture.py) from
# shell tests and CTest FIXTURES_SETUP / FIXTURES_CLEANUP.
#
#   kube-fixture.sh start DIR [fixture options]   e.g. --tls --seed empty
#   kube-fixture.sh stop DIR                      stops it and removes DIR
#   kube-fixture.sh ctl DIR OP [JSON]             POST DIR/control/v1/OP
#   kube-fixture.sh get DIR PATH                  GET  DIR/control/v1/PATH
#
# start returns once DIR/addr exists (the fixture writes it last), so the
# API, DIR/ca.crt, DIR/token, DIR/kubeconfig and DIR/control are usable.
# Set KUBE_FIXTURE_KEEP=1 to keep DIR after stop (for debugging).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop|ctl|get DIR ..." >&2
    exit 2
fi
shift 2

die() { echo "kube-fixture.sh: $*" >&2; exit 1; }

# pid_alive PID: exists and is not a zombie (the fixture is detached, so
# whoever reaps it may take a while)
. "$here/../lib/pid_alive.sh"

running() {
    [ -f "$dir/pid" ] && pid_alive "$(cat "$dir/pid")"
}

case "$cmd" in
start)
    command -v python3 >/dev/null || die "python3 not found; cannot start the fixture"
    if running; then
        die "a fixture already runs for $dir (pid $(cat "$dir/pid"))"
    fi
    mkdir -p "$dir"
    rm -f "$dir/addr" "$dir/pid"
    # Detached, with its own log: CTest must not wait on our stdout, and
    # the fixture has to outlive this script (FIXTURES_SETUP).
    setsid python3 "$here/kube-fixture.py" --state-dir "$dir" "$@" \
        </dev/null >"$dir/fixture.log" 2>&1 &
    child=$!
    for _ in $(seq 1 150); do
        [ -s "$dir/addr" ] && break
        if ! kill -0 "$child" 2>/dev/null; then
            cat "$dir/fixture.log" >&2 || true
            die "fixture exited during start-up (log above)"
        fi
        sleep 0.1
    done
    [ -s "$dir/addr" ] || { kill "$child" 2>/dev/null || true
                            die "fixture did not come up within 15 s"; }
    echo "kube fixture: $(cat "$dir/addr") control $(cat "$dir/control")"
    ;;
stop)
    if [ -f "$dir/pid" ]; then
        pid=$(cat "$dir/pid")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 1 50); do
                pid_alive "$pid" || break
                sleep 0.1
            done
            if pid_alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
        fi
    fi
    if [ "${KUBE_FIXTURE_KEEP:-0}" != 1 ] && [ -d "$dir" ]; then
        rm -rf "$dir"
    fi
    ;;
ctl)
    op=${1:?op required}
    body=${2:-'{}'}
    curl -sS --fail-with-body -m 60 -X POST -H 'Content-Type: application/json' \
        --data "$body" "$(cat "$dir/control")/v1/$op"
    ;;
get)
    path=${1:?path required}
    curl -sS --fail-with-body -m 60 "$(cat "$dir/control")/v1/$path"
    ;;
*)
    die "unknown command $cmd (start|stop|ctl|get)"
    ;;
esac
