#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Self-test of the chart test tooling, so it is known to catch problems
# before it guards charts/drover: the sample chart passes; every manifest in
# testdata/bad fails strict validation; renders that break the chart
# contract (1 replica, DaemonSet on by default, a wider ClusterRole, no
# probe) fail the policy check.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sample=$here/testdata/sample-chart
work=$(mktemp -d "${TMPDIR:-/tmp}/chart-tooling.XXXXXX")
trap 'rm -rf "$work"' EXIT

bindir=$("$root/scripts/install-kube-tools.sh" --print-dir)
helm=$bindir/helm
modules=$(dirname "$bindir")/node/node_modules
export HELM_CACHE_HOME=$work/helm-cache HELM_CONFIG_HOME=$work/helm-config \
       HELM_DATA_HOME=$work/helm-data

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $*"; }

# expect_fail "what" REGEX command...: the command must fail and say REGEX.
expect_fail() {
    local what=$1 re=$2
    shift 2
    if "$@" >"$work/out" 2>&1; then
        not_ok "$what (passed, should fail)"
        sed 's/^/    /' "$work/out"
    elif grep -Eq "$re" "$work/out"; then
        ok "$what"
    else
        not_ok "$what (failed without /$re/)"
        sed 's/^/    /' "$work/out"
    fi
}

if "$here/test_chart.sh" "$sample" --policy >"$work/sample.log" 2>&1; then
    ok "sample chart passes lint, validation and policy"
else
    not_ok "sample chart passes lint, validation and policy"
    sed 's/^/    /' "$work/sample.log"
fi

validate() { node "$here/validate-k8s.js" --modules "$modules" "$@"; }
expect_fail "unknown field is rejected" 'containers\[0\]\.resource: unknown field' \
    validate "$here/testdata/bad/unknown-field.yaml"
expect_fail "wrong type is rejected" 'replicas must be integer' \
    validate "$here/testdata/bad/wrong-type.yaml"
expect_fail "missing required field is rejected" "required property 'name'|required property name" \
    validate "$here/testdata/bad/missing-required.yaml"
expect_fail "kind without schema is rejected" 'no schema for example.invalid/v1 Widget' \
    validate "$here/testdata/bad/unknown-kind.yaml"
expect_fail "rules under metadata are rejected" 'metadata\.rules: unknown field' \
    validate "$here/testdata/bad/misplaced-rbac.yaml"

render() { # render NAME helm-args...: JSON of the rendered objects
    local name=$1
    shift
    "$helm" template drover "$sample" --namespace drover-system "$@" >"$work/$name.yaml"
    validate --json-out "$work/$name.json" "$work/$name.yaml" >/dev/null
}
policy() { python3 "$here/check_chart_policy.py" "$1"; }

render one-replica --set replicas=1
expect_fail "policy: 1 replica" 'replicas 1, want 2' policy "$work/one-replica.json"
render ds-on --set daemonset.enabled=true
expect_fail "policy: DaemonSet on by default" 'DaemonSet drover-agent is rendered' \
    policy "$work/ds-on.json"

render default
mutate() { # mutate NAME PYTHON: edit the default render's objects
    python3 -c "
import json, sys
objs = json.load(open(sys.argv[1]))
by = {o['kind']: o for o in objs}
$2
json.dump(objs, open(sys.argv[2], 'w'))" "$work/default.json" "$work/$1.json"
}
mutate wide-verbs "by['ClusterRole']['rules'][0]['verbs'].append('delete')"
expect_fail "policy: extra verb" "verbs \['delete'\]" policy "$work/wide-verbs.json"
mutate secrets "by['ClusterRole']['rules'].append({'apiGroups': [''], 'resources': ['secrets'], 'verbs': ['get']})"
expect_fail "policy: extra resource" "resources \['secrets'\]" policy "$work/secrets.json"
mutate no-probe "del by['Deployment']['spec']['template']['spec']['containers'][0]['readinessProbe']"
expect_fail "policy: missing readiness probe" 'has no readinessProbe' policy "$work/no-probe.json"
mutate no-secret "p = by['Deployment']['spec']['template']['spec']; p['volumes'] = []"
expect_fail "policy: token not from a Secret" 'does not come from a Secret' \
    policy "$work/no-secret.json"
mutate unbound "objs[:] = [o for o in objs if o['kind'] != 'ClusterRoleBinding']"
expect_fail "policy: ClusterRole not bound" 'no ClusterRoleBinding' policy "$work/unbound.json"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
