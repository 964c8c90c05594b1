#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# promtool on drover's alert rules: syntax and PromQL (check rules), then
# the unit tests in alerts_test.yml (test rules). Skips (77) only when
# promtool is missing (Debian package prometheus, scripts/bootstrap.sh).
#   promtool_rules.sh RULES_FILE ALERTS_TEST_YML
set -eu
[ $# -eq 2 ] || { echo "usage: $0 RULES_FILE ALERTS_TEST_YML" >&2; exit 2; }
if ! command -v promtool >/dev/null 2>&1; then
    echo "SKIP: promtool not installed (apt-get install prometheus)"
    exit 77
fi
promtool check rules "$1"
promtool test rules "$2"
