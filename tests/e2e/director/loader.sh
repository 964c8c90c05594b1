#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# drover-director's loader and CLI against a veth pair in a private network
# namespace: check-config, attach, status, table dump, restart reusing the
# pinned maps (the table survives), apply, stats --json, refusal to replace
# a foreign XDP program without --force, detach removing pins and program,
# decap attach/stats/detach.
#
# usage: loader.sh /path/to/drover-director /path/to/xdp_pass.bpf.o
set -euo pipefail
D=${1:?usage: loader.sh drover-director xdp_pass.bpf.o}
XDP_PASS=${2:?usage: loader.sh drover-director xdp_pass.bpf.o}
if [ "$(id -u)" != 0 ]; then
    echo "e2e_director_loader: needs root (network namespace, XDP)" >&2
    exit 77
fi
NS=drv-ld-$(printf '%x%04x' $$ $((RANDOM)))
TMP=$(mktemp -d /tmp/drover-e2e-loader.XXXXXX)
cleanup() {
    local rc=$?
    set +e
    ip netns del "$NS" 2>/dev/null
    umount "$TMP/bpffs" 2>/dev/null
    rm -rf "$TMP"
    [ $rc -eq 0 ] || echo "e2e_director_loader: FAILED (line ${FAILED_LINE:-?})" >&2
    exit $rc
}
trap 'FAILED_LINE=$LINENO' ERR
trap cleanup EXIT INT TERM

ip netns add "$NS"
ip netns exec "$NS" ip link add va type veth peer name vb
ip -n "$NS" link set va up
ip -n "$NS" link set vb up
mkdir -p "$TMP/bpffs"
mount -t bpf bpf "$TMP/bpffs"
x() { ip netns exec "$NS" "$D" "$@" --pin-root "$TMP/bpffs"; }
fail() { echo "e2e_director_loader: $*" >&2; exit 1; }
field() { awk -v k="$1" '$1 == k { print $2 }'; }

write_config() { # state of the third proxy
    cat >"$TMP/director.json" <<JSON
{"hash_key": "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')",
 "gateway_mac": "02:00:00:00:00:01", "source_v4": "10.77.0.1",
 "vips": [{"address": "10.77.1.1", "port": 80}, {"address": "10.77.1.1", "port": 443}],
 "proxies": [{"address": "10.77.2.1"}, {"address": "10.77.2.2"},
             {"address": "10.77.2.3", "state": "$1"}]}
JSON
}
write_config active

# check-config: good and bad
"$D" check-config --director-config "$TMP/director.json" | grep -q "ok, 2 VIPs, 3 proxies"
echo '{"gateway_mac": "02:00:00:00:00:01", "vips": [], "proxies": []}' >"$TMP/bad.json"
if "$D" check-config --director-config "$TMP/bad.json" 2>"$TMP/err"; then fail "bad config accepted"; fi
grep -q hash_key "$TMP/err" || fail "error does not name hash_key: $(cat "$TMP/err")"

# attach, status, table dump
x attach --dev va --director-config "$TMP/director.json" 2>/dev/null
x status --dev va >"$TMP/status"
[ "$(field attached <"$TMP/status")" = yes ] || fail "status: not attached"
[ "$(field vips <"$TMP/status")" = 2 ] || fail "status: VIP count"
[ "$(field proxies <"$TMP/status")" = 3 ] || fail "status: proxy count"
gen0=$(field generation <"$TMP/status")
sum0=$(field checksum <"$TMP/status")
x table dump --dev va >"$TMP/table"
[ "$(grep -vc '^#' "$TMP/table")" = 65536 ] || fail "table dump: not 65,536 rows"
grep -q ' 10.77.2.3 ' "$TMP/table" || fail "table: proxy 3 has no rows"

# restart: the pinned maps are reused, the same config gives the same table
x attach --dev va --director-config "$TMP/director.json" 2>/dev/null
x status --dev va >"$TMP/status"
[ "$(field generation <"$TMP/status")" != "$gen0" ] || fail "re-attach did not publish a new generation"
[ "$(field checksum <"$TMP/status")" = "$sum0" ] || fail "re-attach changed the table"

# apply: proxy 3 inactive -> gone from every row
sed -i 's/"state": "active"/"state": "inactive"/' "$TMP/director.json"
x apply --dev va --director-config "$TMP/director.json" 2>/dev/null
x table dump --dev va >"$TMP/table"
if grep -q '10.77.2.3' "$TMP/table"; then fail "inactive proxy still in the table"; fi
x stats --dev va --json | python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["dev"] == "va" and "encap_v4" in d and "decap_local" not in d'

# foreign program: refused without --force, replaced with it
x detach --dev va 2>/dev/null
[ -z "$(ls "$TMP/bpffs/va" 2>/dev/null)" ] || fail "detach left pins: $(ls "$TMP/bpffs/va")"
ip -n "$NS" link show va | grep -q xdp && fail "detach left the XDP program"
ip -n "$NS" link set dev va xdp obj "$XDP_PASS" sec xdp
if x attach --dev va --director-config "$TMP/director.json" 2>"$TMP/err"; then fail "replaced a foreign program"; fi
grep -q -- "--force" "$TMP/err" || fail "refusal does not mention --force"
if x detach --dev va 2>/dev/null; then fail "detached a foreign program"; fi
x attach --dev va --director-config "$TMP/director.json" --force 2>/dev/null
[ "$(x status --dev va | field attached)" = yes ] || fail "--force attach"
x detach --dev va 2>/dev/null

# decap on the other end
x decap attach --dev vb --gue-port 6080 2>/dev/null
x decap stats --dev vb | grep -q '^decap_local' || fail "decap stats"
x decap detach --dev vb 2>/dev/null
ip -n "$NS" link show vb | grep -q xdp && fail "decap detach left the program"
echo "e2e_director_loader: ok"
