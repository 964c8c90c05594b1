#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/faults/haproxy_hang.sh: the fault suite's HAProxy binary (the proxy
# watchers' --haproxy-bin, through FLEET_HAPROXY_BIN): haproxy with the
# same arguments (runs, reloads - the master re-executes itself with them -
# and `-c` checks) and one more config file, haproxy_hang.cfg: one thread
# and the Lua CLI command `hang SECONDS FILE` of hang.lua, with which a
# fault blocks a worker. Test rigs only: the product never loads it.
here=$(cd "$(dirname "$0")" && pwd)
DROVER_FAULTS_HANG_LUA=$here/hang.lua
export DROVER_FAULTS_HANG_LUA
exec haproxy "$@" -f "$here/haproxy_hang.cfg"
