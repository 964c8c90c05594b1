#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every drover program, and each of its subcommands, answers --help and -h
# with exit 0, a usage text (options or commands) on stdout and nothing on stderr (no "missing
# required option" before the usage, no Consul request).
# usage: test_help.sh NAME=PATH... (NAME: drover-watcher, droverctl, ...)
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/drover-help.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0 n=0
bad() { echo "FAIL: $*"; fail=1; }

helpcheck() {
    for h in --help -h; do
        n=$((n + 1))
        # no Consul is reachable there: a command run by mistake fails fast
        DROVER_CONSUL_ADDR=http://127.0.0.1:1 "$@" $h >"$tmp/out" 2>"$tmp/err" </dev/null
        rc=$?
        if [ $rc -ne 0 ]; then
            bad "'$* $h' exits $rc: $(head -c 200 "$tmp/err")"
        elif [ -s "$tmp/err" ]; then
            bad "'$* $h' writes to stderr: $(head -c 200 "$tmp/err")"
        elif ! grep -qe '--' "$tmp/out"; then
            bad "'$* $h' prints no usage (no option or command list)"
        fi
    done
}

[ $# -gt 0 ] || { echo "usage: $0 NAME=PATH..."; exit 2; }
for arg in "$@"; do
    name=${arg%%=*} bin=${arg#*=}
    [ -x "$bin" ] || { bad "$name: $bin is not an executable"; continue; }
    helpcheck "$bin"
    # shellcheck disable=SC2086 # subcommands are one or two words
    case $name in
    drover-watcher) for s in run render director "director run"; do helpcheck "$bin" $s; done ;;
    drover-director)
        for s in attach apply detach status stats check-config table "table dump" decap \
            "decap attach" "decap detach" "decap stats"; do
            helpcheck "$bin" $s
        done ;;
    droverctl)
        for s in drain maint undrain ready weight director "director fill" status history \
            help serve; do
            helpcheck "$bin" $s
        done ;;
    esac
done
[ $fail -eq 0 ] && echo "help ok ($n invocations)"
exit $fail
