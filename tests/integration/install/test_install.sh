#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Installs the build into a temporary prefix and checks the layout against
# what the installed files expect of it:
#  - every Exec*= program of every installed systemd unit exists, executable,
#    at the path the unit names (read relative to the configured prefix),
#    and so does every Documentation= file;
#  - the watcher's default --template-dir holds the shipped templates;
#  - the Consul policies and Prometheus rules are in share/drover/;
#  - every installed program, and each of its subcommands, answers --help
#    (test_help.sh).
# usage: test_install.sh CMAKE BUILD_DIR CONFIGURED_PREFIX SOURCE_DIR
set -u
here=$(dirname "$0")
cmake=$1 build=$2 prefix=$3 src=$4
tmp=$(mktemp -d "${TMPDIR:-/tmp}/drover-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0
bad() { echo "FAIL: $*"; fail=1; }

if ! "$cmake" --install "$build" --prefix "$tmp/root" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "FAIL: cmake --install $build --prefix $tmp/root"
    exit 1
fi
root=$tmp/root

# --- units: one installed per deploy/systemd unit, programs where they say
units=$(find "$src/deploy/systemd" -name '*.service' | wc -l)
[ "$units" -gt 0 ] || bad "no units in $src/deploy/systemd"
for u in "$src"/deploy/systemd/*.service; do
    inst=$root/lib/systemd/system/$(basename "$u")
    [ -f "$inst" ] || { bad "unit $(basename "$u") not installed in lib/systemd/system"; continue; }
    # Exec lines: first word after '=', minus systemd's prefix characters
    grep -E '^Exec[A-Za-z]*=' "$inst" | sed -E 's/^Exec[A-Za-z]*=[-@:+!]*//; s/[[:space:]].*//' |
        while read -r prog; do
            case $prog in
            "$prefix"/*) ;;
            /bin/* | /usr/bin/*) continue ;; # system tools (kill)
            /usr/sbin/haproxy) continue ;;    # Debian's HAProxy (haproxy@.service)
            *) echo "FAIL: $(basename "$u"): $prog is outside the prefix $prefix"; echo x >>"$tmp/fails"; continue ;;
            esac
            [ -x "$root${prog#"$prefix"}" ] ||
                { echo "FAIL: $(basename "$u"): $prog not installed (no $root${prog#"$prefix"})"; echo x >>"$tmp/fails"; }
            echo "$prog" >>"$tmp/unit-progs"
        done
done
[ -e "$tmp/fails" ] && fail=1
# Documentation= links into the installed docs
# shellcheck disable=SC2013 # one path per line, no spaces
for doc in $(sed -n 's|^Documentation=file://||p' "$root"/lib/systemd/system/*.service | sort -u); do
    case $doc in
    "$prefix"/*) [ -f "$root${doc#"$prefix"}" ] || bad "unit documentation $doc not installed" ;;
    *) bad "unit documentation $doc is outside the prefix $prefix" ;;
    esac
done
[ -s "$tmp/unit-progs" ] || bad "no unit names a drover program"

# --- templates where the watcher looks by default
watcher=$(find "$root" -name drover-watcher -type f | head -1)
if [ -z "$watcher" ]; then
    bad "drover-watcher not installed"
else
    tdir=$("$watcher" --help | sed -n '/--template-dir/,/default:/s/.*default: \([^ ]*\).*/\1/p' | head -1)
    case $tdir in
    "$prefix"/*)
        t=$root${tdir#"$prefix"}
        if [ ! -f "$t/http.mustache" ] || [ ! -d "$t/partials" ]; then
            bad "templates not installed in the watcher's default --template-dir $tdir"
        fi ;;
    *) bad "watcher's default --template-dir '$tdir' is outside the prefix $prefix" ;;
    esac
fi
for f in share/drover/consul/watcher.hcl share/drover/consul/render-policies.sh \
         share/drover/prometheus/drover-alerts.yml; do
    [ -f "$root/$f" ] || bad "$f not installed"
done
[ -x "$root/share/drover/consul/render-policies.sh" ] || bad "render-policies.sh not executable"
[ -z "$(find "$root" -name '*.bpf.o')" ] || bad "BPF objects installed (the skeletons embed them)"

# --- the installed programs answer --help (and every subcommand's)
progs=
for p in drover-exporter drover-watcher drover-agent-checker drover-director droverctl; do
    bin=$(find "$root" -name "$p" -type f | head -1)
    if [ -n "$bin" ]; then progs="$progs $p=$bin"; else bad "$p not installed"; fi
done
# shellcheck disable=SC2086 # NAME=PATH words, paths without spaces (mktemp)
"$here/test_help.sh" $progs || fail=1

[ $fail -eq 0 ] && echo "install layout ok ($units units)"
exit $fail
