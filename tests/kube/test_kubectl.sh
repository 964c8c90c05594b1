#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Faithfulness check: the real kubectl 1.30 against the fixture, over TLS with
# a bearer token from the kubeconfig's tokenFile.
#
#   test_kubectl.sh [STATE_DIR]
#
# With STATE_DIR (a fixture started by CTest FIXTURES_SETUP with
# `kube-fixture.sh start DIR --tls`, default seed) it uses that fixture;
# without, it starts and stops its own. kubectl comes from $KUBECTL or from
# scripts/install-kube-tools.sh, which is run here if the tools are missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
fixture=$here/kube-fixture.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/kube-kubectl-test.XXXXXX")
dir=${1:-}
own=0
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "$own" -eq 1 ]; then "$fixture" stop "$dir" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $*"; }
check() { # check "what" command...
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}

if [ -n "${KUBECTL:-}" ]; then
    kubectl_bin=$KUBECTL
else
    bindir=$("$root/scripts/install-kube-tools.sh" --print-dir)
    kubectl_bin=$bindir/kubectl
fi
client=$("$kubectl_bin" version --client)
[[ $client == *"Client Version: v1.30"* ]] ||
    { echo "kubectl at $kubectl_bin is not 1.30: $client" >&2; exit 1; }

if [ -z "$dir" ] || [ ! -s "$dir/addr" ]; then
    dir=$work/fixture
    own=1
    "$fixture" start "$dir" --tls
fi
ctl() { "$fixture" ctl "$dir" "$@" >/dev/null; }

k() {
    "$kubectl_bin" --kubeconfig "$dir/kubeconfig" --cache-dir "$work/kcache" \
        --request-timeout 20s "$@"
}

# wait_for FILE REGEX: bounded wait for kubectl to print a matching line.
wait_for() {
    local file=$1 re=$2 i
    for i in $(seq 1 200); do
        grep -Eq "$re" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "--- $file:" >&2
    cat "$file" >&2 || true
    return 1
}

grep -q '^https://127.0.0.1:' "$dir/addr" || { echo "fixture not in TLS mode" >&2; exit 1; }

# 1. discovery + server version
k version >"$work/version" 2>&1 || true
check "kubectl version shows the server" grep -q 'Server Version: v1.30.0' "$work/version"

# 2. get services -A (server-side Table)
k get services -A >"$work/svc"
check "get services -A prints the header" \
    grep -Eq '^NAMESPACE +NAME +TYPE +CLUSTER-IP +EXTERNAL-IP +PORT\(S\) +AGE' "$work/svc"
check "get services -A lists kubernetes" \
    grep -Eq '^default +kubernetes +ClusterIP +10\.96\.0\.1 +<none> +443/TCP' "$work/svc"
check "get services -A lists kube-dns" \
    grep -Eq '^kube-system +kube-dns +ClusterIP +10\.96\.0\.10 +<none> +53/UDP,53/TCP,9153/TCP' "$work/svc"

# 3. pagination through kubectl: --chunk-size=1 follows continue tokens
seq0=$("$fixture" get "$dir" state | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
k get services -A --chunk-size=1 >"$work/svc-chunked"
check "chunked list gives the same rows" diff <(awk '{print $1, $2}' "$work/svc") \
    <(awk '{print $1, $2}' "$work/svc-chunked")
check "kubectl asked for pages of one" ctl wait_request \
    "{\"since\": $seq0, \"path\": \"/api/v1/services\", \"query\": {\"limit\": \"1\"}, \"timeout\": 1}"
"$fixture" get "$dir" "requests?since=$seq0" >"$work/reqs"
check "the second page carried continue" python3 -c '
import json, sys
reqs = json.load(open(sys.argv[1]))
sys.exit(0 if any("continue" in r["query"] for r in reqs) else 1)' "$work/reqs"

# 4. get nodes -o json
k get nodes -o json >"$work/nodes.json"
check "get nodes -o json is a List of 3 complete Nodes" python3 -c '
import json, sys
l = json.load(open(sys.argv[1]))
assert l["kind"] == "List", l["kind"]
items = l["items"]
assert [i["metadata"]["name"] for i in items] == ["cp-1", "worker-1", "worker-2"]
for n in items:
    assert n["kind"] == "Node" and n["apiVersion"] == "v1"
    ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "True"
    assert n["status"]["nodeInfo"]["kubeletVersion"] == "v1.30.0"
' "$work/nodes.json"
k get nodes >"$work/nodes"
check "get nodes shows roles and readiness" \
    grep -Eq '^cp-1 +Ready +control-plane +[0-9a-z]+ +v1\.30\.0' "$work/nodes"

# 5. single object and label selector
k get service -n kube-system kube-dns -o json >"$work/dns.json"
check "get service -o json returns the Service" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["kind"] == "Service" and s["metadata"]["name"] == "kube-dns"
assert [p["name"] for p in s["spec"]["ports"]] == ["dns", "dns-tcp", "metrics"]
' "$work/dns.json"
k get services -A -l k8s-app=kube-dns --no-headers >"$work/sel"
check "label selector through kubectl" test "$(awk '{print $2}' "$work/sel")" = kube-dns

# 6. get services --watch sees a service created through the control API
k get services -A --watch >"$work/svc-watch" 2>&1 &
pids+=($!)
ctl wait_watchers '{"count": 1, "kind": "Service", "timeout": 20}'
ctl add_service '{"namespace": "shop", "name": "frontend", "type": "LoadBalancer",
                  "externalTrafficPolicy": "Local",
                  "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}'
check "watch prints the new service" \
    wait_for "$work/svc-watch" '^shop +frontend +LoadBalancer +[0-9.]+ +<pending> +80:30080/TCP'
ctl set_lb_ingress '{"namespace": "shop", "name": "frontend", "ingress": [{"ip": "192.0.2.7"}]}'
check "watch prints the status update" \
    wait_for "$work/svc-watch" '^shop +frontend +LoadBalancer +[0-9.]+ +192\.0\.2\.7 +80:30080/TCP'

# 7. get nodes --watch sees readiness and cordon changes
k get nodes --watch >"$work/node-watch" 2>&1 &
pids+=($!)
ctl wait_watchers '{"count": 1, "kind": "Node", "timeout": 20}'
ctl set_node_ready '{"name": "worker-1", "ready": false}'
check "node watch shows NotReady" wait_for "$work/node-watch" '^worker-1 +NotReady '
ctl cordon '{"name": "worker-2"}'
check "node watch shows SchedulingDisabled" \
    wait_for "$work/node-watch" '^worker-2 +Ready,SchedulingDisabled '

# 8. watch events as JSON
k get services -n shop --watch --output-watch-events -o json >"$work/events" 2>&1 &
pids+=($!)
check "json watch starts with ADDED" wait_for "$work/events" '"type": ?"ADDED"'
ctl delete_service '{"namespace": "shop", "name": "frontend"}'
check "json watch shows DELETED" wait_for "$work/events" '"type": ?"DELETED"'

# 9. token rotation: the old token is refused, kubectl re-reads tokenFile
old=$(cat "$dir/token")
ctl rotate_token
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/ca.crt" \
    -H "Authorization: Bearer $old" "$(cat "$dir/addr")/api/v1/nodes")
check "old token is refused with 401" test "$code" = 401
k get nodes -o name >"$work/after-rotate" 2>&1 || true
check "kubectl works with the rotated token file" grep -qx node/cp-1 "$work/after-rotate"

# 10. kubectl never asked for anything the fixture does not serve
"$fixture" get "$dir" "requests" >"$work/all-reqs"
check "no request of kubectl went unanswered (404/405)" python3 -c '
import json, sys
bad = [(r["method"], r["path"], r["status"]) for r in json.load(open(sys.argv[1]))
       if r["status"] in (404, 405, None)]
print("unserved:", bad) if bad else None
sys.exit(1 if bad else 0)' "$work/all-reqs"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
