#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks the Grafana dashboard (deploy/grafana/*.json) against the code.

usage: check_dashboard_metrics.py SOURCE_ROOT DASHBOARD_JSON

- the file is a dashboard: JSON with a title, a uid and panels, each
  panel's gridPos inside the 24 columns, panel ids unique;
- every panel that is not a row has at least one query, and every query
  (expr) names at least one metric;
- every drover_* metric a query names is exported by a daemon (the same
  rule as the alert rules: check_alert_metrics.exported_metrics); the
  haproxy_* ones are checked against a running HAProxy's exporter by the
  templates integration test;
- a query names no metric family other than drover_* and haproxy_*.
Exit 0 = all good, 1 = a finding (each printed).
"""
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_alert_metrics import exported_metrics  # noqa: E402

# PromQL words that look like metric names in an expression
PROMQL = {"sum", "by", "without", "rate", "increase", "histogram_quantile", "count", "max",
          "min", "avg", "le", "on", "ignoring", "group_left", "group_right", "and", "or",
          "unless", "bool", "offset", "topk", "bottomk", "abs", "clamp_min", "irate", "delta",
          "deriv", "time", "vector", "scalar", "label_replace"}


def panels(dash):
    """Every panel, rows' nested panels included."""
    for p in dash.get("panels", []):
        yield p
        for q in p.get("panels", []):
            yield q


def metric_names(expr):
    """Metric names of a PromQL expression: identifiers outside strings,
    label matchers, grouping clauses and durations, minus PromQL words."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)   # string literals
    e = re.sub(r"\{[^}]*\}", "", e)                 # label matchers
    e = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", e)  # grouping labels
    e = re.sub(r"\[[^\]]*\]", "", e)                # ranges
    return {w for w in re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", e)
            if w not in PROMQL and not re.fullmatch(r"\d.*", w)}


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    root, path = sys.argv[1:]
    problems = []
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        print("FAIL %s: %s" % (path, e))
        return 1
    exported = exported_metrics(root)
    for field in ("title", "uid", "panels"):
        if not dash.get(field):
            problems.append("%s: no %s" % (path, field))
    ids, n_queries, drover, haproxy = set(), 0, set(), set()
    for p in panels(dash):
        title = p.get("title", "(untitled)")
        if p.get("id") in ids:
            problems.append("panel %r: id %s used twice" % (title, p.get("id")))
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if g.get("x", 0) + g.get("w", 0) > 24:
            problems.append("panel %r: gridPos %s past the 24 columns" % (title, g))
        if p.get("type") == "row":
            continue
        targets = p.get("targets", [])
        if not targets:
            problems.append("panel %r: no query" % title)
        for t in targets:
            expr = t.get("expr", "")
            n_queries += 1
            names = metric_names(expr)
            if not names:
                problems.append("panel %r: query names no metric: %s" % (title, expr))
            for name in sorted(names):
                if name.startswith("drover_"):
                    drover.add(name)
                    if not exported(name):
                        problems.append("panel %r: metric %s is exported by no daemon"
                                        % (title, name))
                elif name.startswith("haproxy_"):
                    haproxy.add(name)
                else:
                    problems.append("panel %r: %s is neither a drover_ nor a haproxy_ metric"
                                    % (title, name))
    for p in problems:
        print("FAIL " + p)
    print("%d queries, %d drover metrics, %d haproxy metrics, %d problems"
          % (n_queries, len(drover), len(haproxy), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
