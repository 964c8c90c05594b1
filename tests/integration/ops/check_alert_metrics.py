#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks deploy/prometheus alert rules against the code and the runbook.

usage: check_alert_metrics.py SOURCE_ROOT RULES_FILE RUNBOOK_MD

- every drover_* metric name in the rules' expressions is exported by a
  daemon (exported_metrics: a string literal in the C sources, a
  histogram's series, or one of the Consul client's generated names);
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


def exported_metrics(root):
    """A predicate: is this drover_* metric name exported by a daemon?

    - a string literal in the C sources (metrics_counter, _gauge, _emit...);
    - <name>_bucket, _sum or _count of a histogram registered with
      metrics_histogram under a literal name;
    - a Consul client's generated names (common/consul_metrics.c):
      drover_<component>_consul_<field>_total for a component that calls
      consul_stats_emit, drover_<component>_consul_request_duration_seconds
      (and its _bucket/_sum/_count) for one that calls
      consul_client_observe_latency.
    """
    src = read_sources(root)
    alltext = "\n".join(src.values())
    literals = set(re.findall(r'"(drover_[a-z0-9_]+)"', alltext))
    histograms = set(re.findall(r'metrics_histogram\(\s*[^;]*?"(drover_[a-z0-9_]+)"', alltext))
    consul_c = src.get(os.path.join(root, "common", "consul_metrics.c"), "")
    consul_fields = set(re.findall(r'\{"([a-z_]+)",', consul_c))
    consul_comps = set(re.findall(r'consul_stats_emit\([^;]*?"([a-z_]+)"\)', alltext))
    latency_comps = set(re.findall(r'consul_client_observe_latency\([^;]*?"([a-z_]+)"\)', alltext))

    def exported(metric):
        if metric in literals:
            return True
        base = re.sub(r"_(bucket|sum|count)$", "", metric)
        if base != metric and base in histograms:
            return True
        m = re.fullmatch(r"drover_([a-z_]+?)_consul_([a-z_]+)_total", metric)
        if m and m.group(1) in consul_comps and m.group(2) in consul_fields:
            return True
        m = re.fullmatch(r"drover_([a-z_]+?)_consul_request_duration_seconds", base)
        return bool(m and m.group(1) in latency_comps)

    return exported


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    root, rules_file, runbook = sys.argv[1:]
    exported = exported_metrics(root)
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
            if exported(metric):
                continue
            problems.append("%s: metric %s is exported by no daemon" % (alert, metric))
    for p in problems:
        print("FAIL " + p)
    print("%d alerts, %d metrics, %d problems" % (len(found), len(seen), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
