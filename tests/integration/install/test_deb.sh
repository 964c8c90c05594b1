#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The Debian packages (debian/), built, checked and installed as an operator
# would meet them:
#  - dpkg-buildpackage -b from a copy of the source tree (tracked and
#    untracked-but-not-ignored files; nothing in the tree is written);
#  - lintian: no error (warnings are printed);
#  - no maintainer script starts a unit, and a fresh install enables none
#    (every daemon needs its configuration first; on upgrade debhelper's
#    snippet keeps a unit enabled only if the admin had enabled it);
#  - the packages install on this machine (dpkg -i; their Depends must be
#    satisfied already: nothing is downloaded), every installed program
#    answers --version, and `systemd-analyze verify` accepts every installed
#    unit against the installed programs;
#  - the packages are purged again at the end, whatever happened.
# usage: test_deb.sh SOURCE_DIR        (root; exit 77 = cannot run here)
set -uo pipefail
src=$(cd "${1:?usage: test_deb.sh SOURCE_DIR}" && pwd)

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i)"
for tool in dpkg-buildpackage dh lintian help2man systemd-analyze git; do
    command -v "$tool" >/dev/null || skip "$tool not found (scripts/bootstrap.sh installs it)"
done

pkgs=$(sed -n 's/^Package: //p' "$src/debian/control")
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -SVersion)
for p in $pkgs; do
    if dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        skip "$p is installed on this machine already; the test would replace it"
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/drover-deb.XXXXXX") || exit 1
installed=0
cleanup() {
    if [ "$installed" -eq 1 ]; then
        # shellcheck disable=SC2086
        dpkg --purge $(for p in $pkgs; do echo "$p-dbgsym"; done) $pkgs \
            >"$tmp/purge.log" 2>&1 || cat "$tmp/purge.log"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail=0
bad() { echo "FAIL: $*"; fail=1; }
step() { echo "--- $*"; }

step "copy of the source tree"
tree=$tmp/drover-$version
mkdir -p "$tree"
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 cp --parents -t "$tree") || { echo "FAIL: copying $src"; exit 1; }

step "dpkg-buildpackage -b"
t0=$(date +%s)
if ! (cd "$tree" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=$(nproc)" \
        dpkg-buildpackage -b -us -uc) >"$tmp/build.log" 2>&1; then
    tail -60 "$tmp/build.log"
    echo "FAIL: dpkg-buildpackage (log above)"
    exit 1
fi
echo "built in $(($(date +%s) - t0)) s:"
ls "$tmp"/*.deb | sed "s|$tmp/|  |"
for p in $pkgs; do
    ls "$tmp/${p}_${version}_"*.deb >/dev/null 2>&1 || bad "no package $p"
done

step "lintian"
lintian --fail-on error --suppress-tags-from-file /dev/null "$tmp"/*.changes >"$tmp/lintian.log" 2>&1
rc=$?
cat "$tmp/lintian.log"
[ "$rc" -eq 0 ] || bad "lintian found errors"

step "maintainer scripts start nothing"
for deb in "$tmp"/*.deb; do
    dpkg-deb -e "$deb" "$tmp/ctrl" && for s in "$tmp"/ctrl/{preinst,postinst,prerm,postrm}; do
        [ -f "$s" ] || continue
        if grep -nE 'deb-systemd-invoke[^#]*\b(start|restart)\b|systemctl[^#]*\b(start|restart|enable)\b' "$s"; then
            bad "$(basename "$deb") $(basename "$s") starts a unit"
        fi
    done
    rm -rf "$tmp/ctrl"
done

step "dpkg -i"
installed=1
# shellcheck disable=SC2046
if ! dpkg -i "$tmp"/*.deb >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    bad "dpkg -i (unsatisfied Depends are named above)"
fi

step "installed programs: --version"
for prog in /usr/sbin/drover-watcher /usr/sbin/drover-agent-checker /usr/sbin/drover-director \
        /usr/sbin/drover-exporter /usr/bin/droverctl; do
    out=$("$prog" --version 2>&1) || bad "$prog --version: exit $?: $out"
    echo "$prog: $out"
    [ -n "$(dpkg -S "$prog" 2>/dev/null)" ] || bad "$prog belongs to no package"
    man -w "$(basename "$prog")" >/dev/null 2>&1 ||
        [ -f "/usr/share/man/man8/$(basename "$prog").8.gz" ] ||
        [ -f "/usr/share/man/man1/$(basename "$prog").1.gz" ] || bad "no man page for $prog"
done

step "installed units: systemd-analyze verify"
units=$(dpkg -L $pkgs 2>/dev/null | grep -E '^/lib/systemd/system/.*\.service$')
[ -n "$units" ] || bad "no unit installed"
for u in $units; do
    if out=$(systemd-analyze verify "$u" 2>&1); then
        echo "ok   $u"
    else
        echo "$out"
        bad "systemd-analyze verify $u"
    fi
done

# Enabled = a symlink to the unit in some *.wants/ dir (what systemctl
# enable and deb-systemd-helper enable make).
wants=$(find /etc/systemd/system -name 'drover*' 2>/dev/null)
[ -z "$wants" ] || bad "the install enabled units: $wants"

[ "$fail" -eq 0 ] && echo "ok: packages build, pass lintian, install and verify"
exit "$fail"
