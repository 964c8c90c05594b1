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
expect_fail "custom resource: wrong type is rejected" 'interval must be string' \
    validate "$here/testdata/bad/servicemonitor-wrong-type.yaml"
expect_fail "custom resource: unknown field is rejected" 'rules\[0\]\.severity: unknown field' \
    validate "$here/testdata/bad/prometheusrule-unknown-field.yaml"

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

# check_chart_env.py against the built programs' --help (the build dir comes
# from CTest; without it these cases are not run and say so).
if [ -n "${DROVER_BUILD_DIR:-}" ]; then
    envbase=$here/testdata/env/watcher.json
    envcheck() { python3 "$here/check_chart_env.py" "$DROVER_BUILD_DIR" "$@"; }
    envmut() { # envmut NAME PYTHON: edit the watcher container c of the base
        python3 -c "import json,sys; o=json.load(open(sys.argv[1])); c=o[0]['spec']['template']['spec']['containers'][0]; $2; json.dump(o, open(sys.argv[2], 'w'))" \
            "$envbase" "$work/env-$1.json"
    }
    if envcheck "$envbase" >"$work/out" 2>&1; then
        ok "env: a watcher with its paths mounted passes"
    else
        not_ok "env: a watcher with its paths mounted passes"
        sed 's/^/    /' "$work/out"
    fi
    envmut unknown "c['env'].append({'name': 'DROVER_NO_SUCH', 'value': 'x'})"
    expect_fail "env: unknown variable" 'env DROVER_NO_SUCH is no option of drover-watcher' \
        envcheck "$work/env-unknown.json"
    envmut flag "c['args'].append('--no-such-flag')"
    expect_fail "env: unknown flag" 'arg --no-such-flag is no option' envcheck "$work/env-flag.json"
    envmut nocluster "c['env'] = [e for e in c['env'] if e['name'] != 'DROVER_HAPROXY_CLUSTER']"
    expect_fail "env: required option unset" 'requires --haproxy-cluster' \
        envcheck "$work/env-nocluster.json"
    envmut socket "c['env'] = [e for e in c['env'] if e['name'] != 'DROVER_HAPROXY_MASTER_SOCKET']"
    expect_fail "env: default socket path outside the mounts" \
        'haproxy-master-socket /run/drover/haproxy-\{service\}.master is under no volume mount' \
        envcheck "$work/env-socket.json"
    envmut labels "del o[0]['spec']['template']['metadata']['labels']['app.kubernetes.io/version']"
    expect_fail "env: pod template without a recommended label" \
        'pod template lacks app.kubernetes.io/version' envcheck "$work/env-labels.json"
    envmut nodrover "c['command'] = ['sh']"
    expect_fail "env: no drover container at all" 'nothing was checked' \
        envcheck "$work/env-nodrover.json"
else
    echo "# DROVER_BUILD_DIR not set: check_chart_env.py cases not run"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
