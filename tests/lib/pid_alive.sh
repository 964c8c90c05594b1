# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# pid_alive.sh: pid_alive PID - the process exists and is not a zombie.
# A process killed a moment ago may still be a zombie its parent (init,
# for the detached daemons of the tests and the fleet) has not reaped yet:
# it is dead and its sockets are closed, so it is not alive. The one copy
# of that check for consul-dev.sh, kube-fixture.sh, scripts/fleet/lib.sh
# and the e2e fleet test. Sourcing it defines this function and nothing
# else (no traps, options or variables): any script may source it.
pid_alive() {
    kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*zombie' "/proc/$1/status" 2>/dev/null
}
