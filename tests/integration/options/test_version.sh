#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every drover program (and drover-watcher's director side) answers
# --version with exit 0, one line "NAME VERSION[ (git REVISION)]" on stdout
# carrying the project version CMake was configured with, nothing on stderr,
# before any required option or Consul request.
# usage: test_version.sh VERSION NAME=PATH...
set -u
[ $# -ge 2 ] || { echo "usage: $0 VERSION NAME=PATH..."; exit 2; }
version=$1
shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/drover-version.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0 n=0
vcheck() { # NAME_SHOWN ARGV...
    shown=$1
    shift
    n=$((n + 1))
    DROVER_CONSUL_ADDR=http://127.0.0.1:1 "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    rc=$?
    line=$(cat "$tmp/out")
    if [ $rc -ne 0 ]; then
        echo "FAIL: '$*' exits $rc: $(head -c 200 "$tmp/err")"
        fail=1
    elif [ -s "$tmp/err" ]; then
        echo "FAIL: '$*' writes to stderr: $(head -c 200 "$tmp/err")"
        fail=1
    elif [ "$(wc -l <"$tmp/out")" -ne 1 ]; then
        echo "FAIL: '$*' prints more than one line: $line"
        fail=1
    else
        case $line in
        "$shown $version" | "$shown $version (git "*")") ;;
        *)
            echo "FAIL: '$*' prints '$line', want '$shown $version[ (git REV)]'"
            fail=1
            ;;
        esac
    fi
}
for arg in "$@"; do
    name=${arg%%=*} bin=${arg#*=}
    vcheck "$name" "$bin" --version
    case $name in
    drover-watcher)
        vcheck "$name" "$bin" render --version
        vcheck "drover-watcher director" "$bin" director --version
        vcheck "drover-watcher director" "$bin" director status --version
        ;;
    esac
done
[ $fail -eq 0 ] && echo "version ok ($n invocations)"
exit $fail
