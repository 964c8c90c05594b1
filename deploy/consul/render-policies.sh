#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Fill the placeholders of drover's Consul ACL policies for one site.
#
#   render-policies.sh OUTDIR [--root drover/v1/] --kube-cluster NAME \
#                      --director-cluster NAME [--haproxy-cluster NAME]
#
# writes OUTDIR/drover-exporter.hcl, drover-watcher.hcl, droverctl.hcl and,
# with --haproxy-cluster, droverctl-deploy.hcl (the deploy flow's token);
# create them with e.g.
#   consul acl policy create -name drover-exporter -rules @OUTDIR/drover-exporter.hcl
# One exporter policy per Kubernetes cluster (render again with another
# --kube-cluster into another OUTDIR). The agent-checker uses no Consul.
set -eu

die() { echo "render-policies: $*" >&2; exit 2; }

[ $# -ge 1 ] || die "usage: $0 OUTDIR [--root R] --kube-cluster NAME --director-cluster NAME [--haproxy-cluster NAME]"
out=$1
shift
root=drover/v1/ kube='' director='' haproxy=''
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || die "$1 needs a value"
    case $1 in
    --root) root=$2 ;;
    --kube-cluster) kube=$2 ;;
    --director-cluster) director=$2 ;;
    --haproxy-cluster) haproxy=$2 ;;
    *) die "unknown option $1" ;;
    esac
    shift 2
done

# same rules as the daemons' (docs/kv-schema.md): the names become one key
# segment, the root ends in / and does not start with one
name_ok() { printf '%s' "$1" | grep -Eqx '[A-Za-z0-9._-]{1,63}'; }
name_ok "$kube" || die "--kube-cluster '$kube': 1-63 of [A-Za-z0-9._-] required"
name_ok "$director" || die "--director-cluster '$director': 1-63 of [A-Za-z0-9._-] required"
[ -z "$haproxy" ] || name_ok "$haproxy" ||
    die "--haproxy-cluster '$haproxy': 1-63 of [A-Za-z0-9._-] required"
case $root in
/*) die "--root '$root' must not start with /" ;;
*/) ;;
*) root=$root/ ;;
esac
printf '%s' "$root" | grep -Eqx '[A-Za-z0-9._/-]+' || die "--root '$root': unexpected characters"

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
pols="exporter:drover-exporter watcher:drover-watcher droverctl:droverctl"
[ -z "$haproxy" ] || pols="$pols droverctl-deploy:droverctl-deploy"
for p in $pols; do
    src=${p%%:*} dst=${p#*:}
    sed -e "s|@ROOT@|$root|g" -e "s|@KUBE_CLUSTER@|$kube|g" \
        -e "s|@DIRECTOR_CLUSTER@|$director|g" -e "s|@HAPROXY_CLUSTER@|$haproxy|g" \
        "$here/$src.hcl" > "$out/$dst.hcl"
done
echo "policies for root $root, kube cluster $kube, director cluster $director${haproxy:+, haproxy cluster $haproxy} in $out"
