#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every unit in deploy/systemd keeps its `systemd-analyze security` exposure
# (0 = locked down .. 10 = unprotected; offline, from the file) at or under
# its bound: BOUND_DEFAULT, or the unit's line in BOUNDS with the reason it
# needs more. A unit that loosens its sandbox past its bound fails here.
# usage: check_unit_security.sh UNIT_DIR      (exit 77: no systemd-analyze)
set -u
dir=${1:?usage: check_unit_security.sh UNIT_DIR}
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }

BOUND_DEFAULT=2.0
# unit bound reason
BOUNDS='
drover-director@.service 4.5 loads XDP programs: CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_ADMIN (bpffs pins) CAP_SYS_RESOURCE
drover-decap@.service 4.5 loads the decap program: the capabilities of the director
drover-watcher-director@.service 4.5 updates the director maps: CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN
drover-frontdoor-guard@.service 6.5 reads the director maps (CAP_BPF CAP_SYS_ADMIN CAP_NET_ADMIN); its sandbox is not tightened yet (6.2: no SystemCallFilter, Protect*): lower this bound when it is
haproxy@.service 5.0 runs the HAProxy root master (binds the frontends, chroots and drops to haproxy:haproxy); no SystemCallFilter or strict ProtectSystem paths yet (4.7): lower this bound when they are verified under a real systemd
'
fail=0
n=0
for u in "$dir"/*.service; do
    name=$(basename "$u")
    bound=$(printf '%s\n' "$BOUNDS" | awk -v n="$name" '$1 == n { print $2 }')
    bound=${bound:-$BOUND_DEFAULT}
    out=$(systemd-analyze security --offline=true "$u" 2>&1)
    score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
    if [ -z "$score" ]; then
        printf '%s\n' "$out"
        echo "FAIL $name: no exposure level in systemd-analyze's output"
        fail=1
        continue
    fi
    n=$((n + 1))
    if awk -v s="$score" -v b="$bound" 'BEGIN { exit !(s <= b) }'; then
        echo "ok   $name $score <= $bound"
    else
        printf '%s\n' "$out" | grep '✗'
        echo "FAIL $name: exposure $score > bound $bound (the lines above are what is open)"
        fail=1
    fi
done
[ "$n" -gt 0 ] || { echo "FAIL no unit in $dir"; fail=1; }
exit "$fail"
