#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deploy/consul policies against a real Consul agent with ACLs on (default
# deny): render them, create policies and tokens with the master token
# through the consul CLI exactly as docs/operations.md shows, then prove
# with real requests over the HTTP API that each component's token can do
# what the component needs and gets 403 outside it, and that droverctl
# itself works with its token and fails (writing nothing) with the
# watcher's.
#
#   test_consul_acl.sh CONSUL_DEV_SH DEPLOY_CONSUL_DIR DROVERCTL
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: $0 CONSUL_DEV_SH DEPLOY_CONSUL_DIR DROVERCTL" >&2; exit 2; }
consul_dev=$1 policies=$2 droverctl=$3
for t in consul curl python3; do
    command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done

tmp=$(mktemp -d /tmp/drover-ops-acl.XXXXXX)
cleanup() {
    "$consul_dev" stop "$tmp/consul" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$consul_dev" start "$tmp/consul" --acl >/dev/null
addr=$(cat "$tmp/consul/addr")
master=$(cat "$tmp/consul/master-token")
R=drover/v1/

"$policies/render-policies.sh" "$tmp/pol" --root "$R" --kube-cluster k1 --director-cluster d1 \
    --haproxy-cluster edge

fails=0 checks=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# api METHOD PATH TOKEN [DATA] -> "CODE BODY" (body on one line)
api() {
    local m=$1 p=$2 tok=$3 data=${4-}
    local args=(-s --max-time 10 -X "$m" -H "X-Consul-Token: $tok" -o "$tmp/body" -w '%{http_code}')
    [ $# -ge 4 ] && args+=(--data-binary "$data")
    local code
    code=$(curl "${args[@]}" "$addr$p") || code=000
    echo "$code $(tr '\n' ' ' < "$tmp/body")"
}

# expect CODE WHO METHOD PATH [DATA]
expect() {
    local want=$1 who=$2 m=$3 p=$4
    shift 4
    local got
    got=$(api "$m" "$p" "${tokens[$who]}" "$@")
    checks=$((checks + 1))
    if [ "${got%% *}" != "$want" ]; then
        fail "$who $m $p: want $want, got $got"
    else
        echo "ok   $who $m $p -> $want"
    fi
}

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# the commands of docs/operations.md, as an operator runs them
declare -A tokens=([master]=$master)
for c in drover-exporter drover-watcher droverctl droverctl-deploy; do
    CONSUL_HTTP_ADDR=$addr CONSUL_HTTP_TOKEN=$master \
        consul acl policy create -name $c -rules @"$tmp/pol/$c.hcl" > "$tmp/policy.out" ||
        { echo "creating policy $c failed: $(cat "$tmp/policy.out")"; exit 1; }
    CONSUL_HTTP_ADDR=$addr CONSUL_HTTP_TOKEN=$master \
        consul acl token create -description "$c on $(hostname)" -policy-name $c -format json \
        > "$tmp/token.json" || { echo "creating token for $c failed"; exit 1; }
    tokens[$c]=$(json_field SecretID < "$tmp/token.json")
done

# seed what the readers read (as the owners would have written it)
expect 200 master PUT "/v1/kv/${R}haproxy/edge/services/web" '{"backends":[]}'
expect 200 master PUT "/v1/kv/${R}director/d1/proxies/proxy-1" '{"address":"192.0.2.10","state":"active"}'
expect 200 master PUT "/v1/kv/${R}director/d1/config" '{}'

echo "== exporter: writes kube/k1/ only, holds a session lock"
expect 200 drover-exporter PUT "/v1/kv/${R}kube/k1/nodes/node-1" '{"address":"10.0.0.1"}'
expect 200 drover-exporter PUT "/v1/txn" \
    "[{\"KV\":{\"Verb\":\"set\",\"Key\":\"${R}kube/k1/meta\",\"Value\":\"e30=\"}}]"
expect 200 drover-exporter DELETE "/v1/kv/${R}kube/k1/nodes/node-1"
expect 200 drover-exporter PUT /v1/session/create '{"Name":"drover-exporter","TTL":"15s"}'
session=$(json_field ID < "$tmp/body")
expect 200 drover-exporter PUT "/v1/kv/${R}kube/k1/leader?acquire=$session" '{"holder":"exporter-0"}'
grep -q true "$tmp/body" || fail "exporter: lock on kube/k1/leader not acquired: $(cat "$tmp/body")"
expect 403 drover-exporter PUT "/v1/kv/${R}kube/k2/nodes/node-1" '{}'
expect 403 drover-exporter PUT "/v1/kv/${R}maintenance/addr/10.0.0.1" '{}'
expect 403 drover-exporter PUT "/v1/kv/${R}haproxy/edge/services/web" '{"backends":[]}'
expect 403 drover-exporter PUT "/v1/kv/${R}director/d1/proxies/proxy-1" '{}'
# a denied operation in a transaction: 409 with the reason per operation
expect 409 drover-exporter PUT "/v1/txn" \
    "[{\"KV\":{\"Verb\":\"set\",\"Key\":\"${R}audit/x\",\"Value\":\"e30=\"}}]"
grep -q "Permission denied" "$tmp/body" || fail "exporter txn on audit/: not refused by ACL: $(cat "$tmp/body")"
expect 403 drover-exporter GET "/v1/kv/${R}haproxy/edge/services/web"

echo "== watcher: reads kube/, haproxy/, maintenance/, director/; writes only status/ and frontdoor/status/"
expect 200 master PUT "/v1/kv/${R}kube/k1/nodes/node-2" \
    '{"address":"10.0.0.2","addresses":["10.0.0.2"],"cluster":"k1","eligible":true,"excluded":false,"labels":{},"name":"node-2","ready":true,"schedulable":true,"selected":true}'
expect 200 master PUT "/v1/kv/${R}maintenance/addr/10.0.0.2" '{"state":"drain"}'
expect 200 drover-watcher GET "/v1/kv/${R}kube/k1/nodes/node-2"
expect 200 drover-watcher GET "/v1/kv/${R}kube/?recurse"
expect 200 drover-watcher GET "/v1/kv/${R}haproxy/edge/services/web"
expect 200 drover-watcher GET "/v1/kv/${R}maintenance/?recurse"
expect 200 drover-watcher GET "/v1/kv/${R}director/d1/?recurse"
expect 200 drover-watcher GET "/v1/health/service/proxy"
for k in kube/k1/nodes/node-2 haproxy/edge/services/web maintenance/addr/10.0.0.2 \
         director/d1/proxies/proxy-1 audit/x; do
    expect 403 drover-watcher PUT "/v1/kv/${R}$k" '{}'
done
expect 403 drover-watcher DELETE "/v1/kv/${R}maintenance/addr/10.0.0.2"
# its status entry is bound to a session of its own
expect 200 drover-watcher PUT /v1/session/create '{"Name":"w"}'
expect 200 drover-watcher PUT "/v1/kv/${R}status/host-1/haproxy" '{}'
expect 200 drover-watcher PUT "/v1/kv/${R}frontdoor/status/host-1" '{}'
expect 200 master PUT "/v1/kv/${R}frontdoor/hosts/host-2" '{"state":"drain"}'
expect 200 drover-watcher GET "/v1/kv/${R}frontdoor/hosts/?recurse"
expect 403 drover-watcher PUT "/v1/kv/${R}frontdoor/hosts/host-1" '{}'

echo "== droverctl: writes maintenance/, audit/, director/d1/proxies/; reads the rest"
expect 200 droverctl GET "/v1/kv/${R}kube/k1/nodes/node-2"
expect 200 droverctl GET "/v1/kv/${R}haproxy/edge/services/web"
expect 200 droverctl PUT "/v1/kv/${R}maintenance/addr/10.0.0.3" '{"state":"drain"}'
expect 200 droverctl PUT "/v1/kv/${R}audit/20261123T000000Z-x?cas=0" '{}'
expect 403 droverctl PUT "/v1/kv/${R}kube/k1/nodes/node-2" '{}'
expect 403 droverctl PUT "/v1/kv/${R}haproxy/edge/services/web" '{"backends":[]}'
expect 403 droverctl PUT "/v1/kv/${R}director/d1/config" '{}'
expect 403 droverctl PUT "/v1/kv/${R}director/d2/proxies/proxy-1" '{}'
expect 403 droverctl PUT "/v1/kv/other/key" '{}'
expect 403 droverctl PUT /v1/session/create '{"Name":"c"}'

echo "== droverctl-deploy: writes haproxy/edge/, deploy/edge/, audit/; nothing else"
expect 200 droverctl-deploy GET "/v1/kv/${R}maintenance/addr/10.0.0.3"
expect 200 droverctl-deploy PUT "/v1/kv/${R}haproxy/edge/services/web" '{"backends":[]}'
expect 200 droverctl-deploy PUT "/v1/kv/${R}haproxy/edge/canary" '{}'
expect 200 droverctl-deploy PUT "/v1/kv/${R}deploy/edge/history/0000000001" '{}'
expect 200 droverctl-deploy PUT "/v1/kv/${R}audit/20261123T000000Z-y?cas=0" '{}'
expect 403 droverctl-deploy PUT "/v1/kv/${R}haproxy/other/services/web" '{"backends":[]}'
expect 403 droverctl-deploy PUT "/v1/kv/${R}deploy/other/history/0000000001" '{}'
expect 403 droverctl-deploy PUT "/v1/kv/${R}maintenance/addr/10.0.0.3" '{}'
expect 403 droverctl-deploy PUT "/v1/kv/${R}director/d1/config" '{}'
expect 403 droverctl-deploy PUT "/v1/kv/${R}kube/k1/nodes/node-2" '{}'

echo "== droverctl itself, with its token and with the watcher's"
ctl() { # TOKEN_NAME ARGS... -> droverctl's exit code
    local who=$1
    shift
    printf '%s' "${tokens[$who]}" > "$tmp/token"
    "$droverctl" --consul-addr "$addr" --consul-token-file "$tmp/token" --kv-prefix "$R" \
        --director-cluster d1 --author ops-test "$@" > "$tmp/ctl.out" 2>&1
}
proxy_state() {
    curl -s --max-time 10 -H "X-Consul-Token: $master" \
        "$addr/v1/kv/${R}director/d1/proxies/proxy-1?raw" | json_field state
}
audit_count() {
    curl -s --max-time 10 -H "X-Consul-Token: $master" "$addr/v1/kv/${R}audit/?keys" |
        python3 -c 'import json,sys; d = sys.stdin.read(); print(len(json.loads(d)) if d.strip() else 0)'
}
checks=$((checks + 1))
audits=$(audit_count)
if ctl drover-watcher director drain proxy-1 --reason "acl test"; then
    fail "droverctl with the watcher's token succeeded: $(cat "$tmp/ctl.out")"
elif [ "$(proxy_state)" != active ] || [ "$(audit_count)" != "$audits" ]; then
    fail "droverctl with the watcher's token failed but changed KV"
elif ! grep -qi "permission denied" "$tmp/ctl.out" || grep -q "kept changing" "$tmp/ctl.out"; then
    fail "droverctl with the watcher's token: refusal not reported as an ACL denial: $(cat "$tmp/ctl.out")"
else
    echo "ok   droverctl director drain with the watcher's token: refused, nothing written"
fi
checks=$((checks + 1))
if ! ctl droverctl director drain proxy-1 --reason "acl test"; then
    fail "droverctl director drain with its token: $(cat "$tmp/ctl.out")"
elif [ "$(proxy_state)" != draining ] || [ "$(audit_count)" != $((audits + 1)) ]; then
    fail "droverctl director drain: state $(proxy_state), audit entries $(audit_count)"
else
    echo "ok   droverctl director drain with its token: draining + audit entry"
fi
checks=$((checks + 1))
if ! ctl droverctl drain node/k1/node-2 --reason "acl test"; then
    fail "droverctl drain node/k1/node-2 with its token: $(cat "$tmp/ctl.out")"
elif ! curl -sf --max-time 10 -H "X-Consul-Token: $master" \
        "$addr/v1/kv/${R}maintenance/node/k1/node-2" >/dev/null; then
    fail "droverctl drain node/k1/node-2 wrote no maintenance entry"
else
    echo "ok   droverctl drain node/k1/node-2 with its token"
fi
checks=$((checks + 1))
if ctl drover-watcher init; then
    fail "droverctl init with the watcher's token succeeded: $(cat "$tmp/ctl.out")"
elif ! ctl droverctl init || ! grep -q "frontdoor/hosts/" "$tmp/ctl.out"; then
    fail "droverctl init with its token: $(cat "$tmp/ctl.out")"
elif ! curl -sf --max-time 10 -H "X-Consul-Token: $master" \
        "$addr/v1/kv/${R}frontdoor/hosts/" >/dev/null; then
    fail "droverctl init wrote no folder key frontdoor/hosts/"
else
    echo "ok   droverctl init: refused with the watcher's token, folder keys with its own"
fi

echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
