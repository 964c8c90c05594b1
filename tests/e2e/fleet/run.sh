#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# e2e_fleet: the demo's scenario (scripts/fleet/scenario.sh --frontdoor: two
# directors behind the BIRD router) with every step asserted, run with --keep so that the documented way to stop a kept fleet
# (scripts/fleet/down.sh) is exercised too: afterwards none of the run's
# namespaces, processes or files may remain. If the scenario fails it tears
# everything down itself.
#
# usage: run.sh BUILD-DIR
set -euo pipefail
BUILD=${1:?usage: run.sh BUILD-DIR}
SRC=$(cd "$(dirname "$0")/../../.." && pwd)
. "$SRC/tests/lib/pid_alive.sh"
if [ "$(id -u)" != 0 ]; then
    echo "e2e_fleet: needs root (network namespaces, XDP)" >&2
    exit 77
fi
state=$(mktemp -d /tmp/drover-e2e-fleet.XXXXXX)
trap '[ -d "$state" ] && "$SRC/scripts/fleet/down.sh" "$state" >/dev/null 2>&1; true' EXIT
"$SRC/scripts/fleet/scenario.sh" "$BUILD" --frontdoor --keep --state "$state"
id=$(cat "$state/id")
pids=$(awk '{ print $1 }' "$state/pids")
"$SRC/scripts/fleet/down.sh" "$state"
if ip netns list | grep -q -- "-$id\b"; then
    echo "e2e_fleet: down.sh left namespaces: $(ip netns list | grep -- "-$id")" >&2
    exit 1
fi
# a zombie not yet reaped by init is dead, not left running (pid_alive.sh)
for p in $pids; do
    if pid_alive "$p"; then
        echo "e2e_fleet: down.sh left process $p running: $(tr '\0' ' ' </proc/"$p"/cmdline)" >&2
        exit 1
    fi
done
[ ! -e "$state" ] || { echo "e2e_fleet: down.sh left $state" >&2; exit 1; }
echo "e2e_fleet: ok"
