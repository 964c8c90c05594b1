#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Back up and restore the operator-written drover keys in Consul KV.
#
#   kv-backup.sh export FILE [--root drover/v1/]
#   kv-backup.sh import FILE
#
# Only the keys people write are backed up: haproxy/, maintenance/,
# director/ and audit/ under the root. kube/ is left out on purpose: the
# exporter rewrites it from Kubernetes after a full list, and restoring
# an old copy would briefly publish stale nodes. The file is the JSON of
# `consul kv export` (one array, values base64), written atomically.
# Uses the consul CLI, so CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN(_FILE) and
# CONSUL_CACERT / CONSUL_TLS_SERVER_NAME apply as usual.
set -euo pipefail

die() { echo "kv-backup: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: $0 export|import FILE [--root PREFIX]"
cmd=$1 file=$2
shift 2
root=drover/v1/
while [ $# -gt 0 ]; do
    case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a value"; root=$2; shift 2 ;;
    *) die "unknown argument '$1'" ;;
    esac
done
case "$root" in */) ;; *) die "--root '$root' must end with '/'" ;; esac
command -v consul >/dev/null || die "the consul CLI is not installed"

case "$cmd" in
export)
    tmp=$(mktemp "$(dirname "$file")/.kv-backup.XXXXXX")
    trap 'rm -f "$tmp"' EXIT
    parts=()
    for p in maintenance/ haproxy/ director/ audit/; do # the import's order
        part="$tmp.$(echo "$p" | tr -d /)"
        consul kv export "$root$p" > "$part" || die "consul kv export $root$p failed"
        parts+=("$part")
    done
    python3 - "$tmp" "${parts[@]}" <<'PY' || die "merging the exports failed"
import json, sys
out, parts = sys.argv[1], sys.argv[2:]
entries = []
for p in parts:
    entries.extend(json.load(open(p)))
json.dump(entries, open(out, "w"), indent=1)
PY
    rm -f "${parts[@]}"
    sync "$tmp"
    mv "$tmp" "$file"
    trap - EXIT
    n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$file")
    echo "kv-backup: exported $n keys under $root{haproxy,maintenance,director,audit}/ to $file"
    ;;
import)
    [ -r "$file" ] || die "cannot read $file"
    # consul kv import writes key by key in the file's order: maintenance/
    # goes first, so a drain is back before the services it applies to (a
    # watcher that sees every service defined again ends its KV-loss
    # episode and with it the hold on the drains it knew)
    ordered=$(mktemp)
    trap 'rm -f "$ordered"' EXIT
    python3 - "$file" "$root" "$ordered" <<'PY' || die "$file is not a drover backup"
import json, sys
entries = json.load(open(sys.argv[1]))
root = sys.argv[2]
ok = ("maintenance/", "haproxy/", "director/", "audit/")
rank = {}
for e in entries:
    k = e.get("key", "")
    rel = k[len(root):] if k.startswith(root) else ""
    if not rel.startswith(ok):
        sys.exit(f"key '{k}' is outside the operator prefixes under {root}; refusing to import")
    rank[k] = [i for i, p in enumerate(ok) if rel.startswith(p)][0]
entries.sort(key=lambda e: rank[e["key"]])  # stable: the file's order within a prefix
json.dump(entries, open(sys.argv[3], "w"))
PY
    consul kv import "@$ordered" >/dev/null || die "consul kv import failed"
    echo "kv-backup: imported $file"
    ;;
*) die "unknown command '$cmd' (export|import)" ;;
esac
