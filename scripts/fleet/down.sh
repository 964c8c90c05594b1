#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Stops a fleet left running by `scripts/demo.sh --keep` (or
# scripts/fleet/scenario.sh --keep): every process it started, its network
# namespaces and its bpffs mount; removes STATE-DIR.
#
#   scripts/fleet/down.sh STATE-DIR
set -euo pipefail
FLEET_SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$FLEET_SRC/scripts/fleet/lib.sh"
st=${1:?usage: down.sh STATE-DIR}
[ -f "$st/id" ] || fleet_die "$st is not a fleet state dir (no id file)"
fleet_down "$st"
echo "fleet in $st stopped"
