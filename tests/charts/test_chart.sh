#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Test a Helm chart with the real tools: helm lint --strict, helm template
# with the default values and with every ci/*-values.yaml of the chart (the
# chart-testing convention for non-default values), each rendered object
# validated strictly against the Kubernetes schemas (validate-k8s.js), and,
# with --policy, the default render checked against drover's chart contract
# (check_chart_policy.py). With --build DIR, every render is also checked
# against the --help of the drover programs it runs, built in DIR
# (check_chart_env.py: env vars and flags exist, required options set, path
# options under volume mounts). Value files in
# tests/charts/testdata/<chart>-bad-values/ must be refused by `helm
# template`, each with the text of its "# expect: TEXT" line in the error
# (values.schema.json or the templates' checks).
#
#   test_chart.sh CHART_DIR [--policy] [--build DIR]
#
# helm and the validator's node modules come from
# scripts/install-kube-tools.sh, which is run here if they are missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
chart=${1:?usage: test_chart.sh CHART_DIR [--policy] [--build DIR]}
shift
policy=0
build=
while [ $# -gt 0 ]; do
    case $1 in
    --policy) policy=1 ;;
    --build) build=${2:?--build needs a directory}; shift ;;
    *) echo "test_chart.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
kube_version=1.30.0 # what the kubectl shipped with helm targets

work=$(mktemp -d "${TMPDIR:-/tmp}/chart-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

bindir=$("$root/scripts/install-kube-tools.sh" --print-dir)
helm=$bindir/helm
modules=$(dirname "$bindir")/node/node_modules
export HELM_CACHE_HOME=$work/helm-cache HELM_CONFIG_HOME=$work/helm-config \
       HELM_DATA_HOME=$work/helm-data

pass=0
fail=0
step() { # step "what" command...
    local what=$1
    shift
    if "$@" >"$work/step.log" 2>&1; then
        pass=$((pass + 1))
        echo "ok - $what"
    else
        fail=$((fail + 1))
        echo "not ok - $what"
        sed 's/^/    /' "$work/step.log"
    fi
}

render() { # render NAME [helm args...]: template + strict validation
    local name=$1
    shift
    "$helm" template drover "$chart" --namespace drover-system \
        --kube-version "$kube_version" "$@" >"$work/$name.yaml" &&
        node "$here/validate-k8s.js" --modules "$modules" \
            --json-out "$work/$name.json" "$work/$name.yaml"
}

step "helm lint --strict (default values)" "$helm" lint --strict "$chart" \
    --kube-version "$kube_version"
step "helm template + schema validation (default values)" render default
if [ "$policy" -eq 1 ]; then
    step "chart contract on the default render" \
        python3 "$here/check_chart_policy.py" "$work/default.json"
fi

shopt -s nullglob
for values in "$chart"/ci/*.yaml; do
    v=$(basename "$values" .yaml)
    step "helm lint --strict ($v)" "$helm" lint --strict "$chart" -f "$values" \
        --kube-version "$kube_version"
    step "helm template + schema validation ($v)" render "$v" -f "$values"
done

if [ -n "$build" ]; then
    step "every render against the programs' --help" \
        python3 "$here/check_chart_env.py" "$build" "$work"/*.json
fi

refused() { # refused VALUES: helm template fails, naming the expected text
    local values=$1 expect
    expect=$(sed -n 's/^# expect: //p' "$values")
    [ -n "$expect" ] || { echo "$values has no '# expect:' line"; return 1; }
    if "$helm" template drover "$chart" --namespace drover-system \
        --kube-version "$kube_version" -f "$values" >"$work/refused.out" 2>&1; then
        echo "rendered, but must be refused:"
        cat "$work/refused.out"
        return 1
    fi
    grep -qF -- "$expect" "$work/refused.out" || {
        echo "refused, but without \"$expect\":"
        cat "$work/refused.out"
        return 1
    }
}
for values in "$here/testdata/$(basename "$chart")-bad-values"/*.yaml; do
    step "refused: $(basename "$values" .yaml)" refused "$values"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
