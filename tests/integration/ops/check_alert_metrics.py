#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks deploy/prometheus alert rules against the code and the runbook.

usage: check_alert_metrics.py SOURCE_ROOT RULES_FILE RUNBOOK_MD

- every drover_* metric name in the rules' expressions is exported by a
  daemon: it appears as a string literal in the C sources, or it is one of
  the Consul client's generated counters drover_<component>_consul_<field>_total
  (common/consul_metrics.c) for a component that calls consul_stats_emit;
  a renamed metric fails here instead of silently never firing;
- every alert is explained in the runbook (its name appears there).
Exit 0 = all good, 1 = a finding (each printed).
"""
import os
import re
import sys

SOURCE_DIRS = ("common", "exporter", "watcher", "agent-checker", "ctl", "xdp-lb")


def read_sources(root):
    text = {}
    for d in SOURCE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for f in files:
                if f.endswith((".c", ".h")):
                    p = os.path.join(dirpath, f)
                    with open(p, encoding="utf-8", errors="replace") as fh:
                        text[p] = fh.read()
    return text


def rules(path):
    """(alert, expr) pairs; a small reader for the file's own layout, so the
    check needs no YAML module: '- alert: NAME' then 'expr: ...'."""
    out, name = [], None
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\s*-\s*alert:\s*(\S+)", line)
        if m:
            name = m.group(1)
            continue
        m = re.match(r"\s*expr:\s*(.+)$", line)
        if m:
            if name is None:
                raise SystemExit("%s: expr before any alert: %s" % (path, line.strip()))
            out.append((name, m.group(1)))
            name = None
    return out


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    root, rules_file, runbook = sys.argv[1:]
    src = read_sources(root)
    alltext = "\n".join(src.values())
    literals = set(re.findall(r'"(drover_[a-z0-9_]+)"', alltext))
    consul_c = src.get(os.path.join(root, "common", "consul_metrics.c"), "")
    consul_fields = set(re.findall(r'\{"([a-z_]+)",', consul_c))
    consul_comps = set(re.findall(r'consul_stats_emit\([^;]*?"([a-z_]+)"\)', alltext))
    doc = open(runbook, encoding="utf-8").read()

    problems, seen = [], set()
    found = rules(rules_file)
    if not found:
        problems.append("%s: no alert rules found" % rules_file)
    for alert, expr in found:
        if alert not in doc:
            problems.append("%s: not explained in %s" % (alert, runbook))
        for metric in sorted(set(re.findall(r"\bdrover_[a-z0-9_]+", expr))):
            seen.add(metric)
            if metric in literals:
                continue
            m = re.fullmatch(r"drover_([a-z_]+?)_consul_([a-z_]+)_total", metric)
            if m and m.group(1) in consul_comps and m.group(2) in consul_fields:
                continue
            problems.append("%s: metric %s is exported by no daemon" % (alert, metric))
    for p in problems:
        print("FAIL " + p)
    print("%d alerts, %d metrics, %d problems" % (len(found), len(seen), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
