#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Drift between the machine-readable KV schema (docs/kv-schema.json, which
tests/unit/common/test_kv_schema.c keeps equal to common/kv_schema.c),
docs/kv-schema.md and the Python fixtures that write KV records:

  - every record has a section in docs/kv-schema.md whose heading names
    its key, and the section names every field of the record; a field in
    the section's field table that the schema does not know is drift too;
  - every record's example passes the schema's own check;
  - the values the fixture helpers of the Python tests write
    (tests/integration/watcher/watcherlib.py: node, Fleet.service;
    tests/integration/ctl/ctllib.py: node, write_fleet)
    are records of the schema with their required fields and types."""

import os
import re
import sys
import types

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "watcher"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "ctl"))

import kv_schema  # noqa: E402

problems = []


def sections(md):
    """{heading text: body} for every ## / ### heading."""
    out, cur, body = {}, None, []
    for line in md.splitlines():
        m = re.match(r"^(#{2,3}) (.*)$", line)
        if m:
            if cur:
                out[cur] = "\n".join(body)
            cur, body = m.group(2), []
        elif cur:
            body.append(line)
    if cur:
        out[cur] = "\n".join(body)
    return out


def heading_key(key):
    """The key as the doc's headings write it: R + the key up to the first
    alternative list."""
    return "`R " + key.split("{")[0].replace("...", "")


def check_docs(schema):
    with open(os.path.join(ROOT, "docs", "kv-schema.md"), encoding="utf-8") as f:
        secs = sections(f.read())
    for name, rec in schema["records"].items():
        hk = heading_key(rec["key"])
        hits = [h for h in secs if h.startswith(hk)]
        if not hits:
            problems.append(f"docs/kv-schema.md: no section headed {hk}... for record {name}")
            continue
        body = secs[hits[0]]
        for field in rec.get("fields", {}):
            if f"`{field}`" not in body and f'"{field}"' not in body:
                problems.append(f"docs/kv-schema.md {hits[0]}: field {field} of {name} not named")
        # first-cell names of field-table rows (nested ".x" rows and key rows excluded)
        for row in re.findall(r"^\| ([^|]*) \|", body, re.M):
            for cell in re.findall(r"`([^`]+)`", row):
                cell = cell.replace("[]", "")
                if cell.startswith(".") or cell.startswith("R ") or cell in ("field", "key"):
                    continue
                if re.fullmatch(r"[a-z_]+", cell) and cell not in rec.get("fields", {}):
                    problems.append(f"docs/kv-schema.md {hits[0]}: table field {cell} is not in "
                                    f"the schema record {name}")


def check_examples(schema):
    for name, rec in schema["records"].items():
        if rec.get("reserved"):
            continue
        for p in kv_schema.check_record(rec, rec["example"]):
            problems.append(f"schema example of {name}: {p}")


class FakeKV:
    def __init__(self):
        self.puts = []

    def put(self, key, value):
        self.puts.append((key, value))


def check_fixtures(schema):
    import ctllib
    import watcherlib

    fleet = types.SimpleNamespace(FE_PORT=8080)
    written = [("haproxy/edge/services/web", watcherlib.Fleet.service(fleet, maxconn=100)),
               ("kube/prod-a/nodes/n1", watcherlib.node("127.0.0.1")),
               ("kube/prod-a/nodes/n2", watcherlib.node("127.0.0.2", eligible=False)),
               ("kube/prod-a/nodes/node-a", ctllib.node("node-a", "prod-a", "10.0.0.1"))]
    kv = FakeKV()
    ctllib.write_fleet(kv)
    written += kv.puts
    if len(written) < 9:
        problems.append(f"fixtures: only {len(written)} records seen")
    for key, value in written:
        problems.extend(f"fixture: {p}" for p in kv_schema.check_value(key, value, schema))


def check_node_shards():
    """tests/lib/kv_schema.py's shard of a node is common/kv_key.c's: the
    vectors of tests/unit/common/test_kv_schema.c (test_node_shards)."""
    vectors = {"": "05", "n1": "00", "worker-a1.dc1.example.net": "07", "node-0000": "00",
               "node-0499": "02", "a": "0c"}
    for name, want in vectors.items():
        if kv_schema.node_shard(name) != want:
            problems.append(f"kv_schema.node_shard({name!r}) = {kv_schema.node_shard(name)}, "
                            f"C says {want}")
    key = kv_schema.node_key("prod-a", "worker-a1.dc1.example.net")
    if kv_schema.record_for_key(key)[0] != "kube_node":
        problems.append(f"{key}: not a kube_node record of the schema")


def main():
    schema = kv_schema.load()
    check_node_shards()
    check_docs(schema)
    check_examples(schema)
    check_fixtures(schema)
    # the checker itself must catch drift
    bad = kv_schema.check_value("kube/c/nodes/n", {"addresses": ["10.0.0.1"], "eligble": True},
                                schema)
    if len(bad) != 2:
        problems.append(f"kv_schema.check_value missed a typo'd required field: {bad}")
    for p in problems:
        print("FAIL:", p)
    print(f"{len(schema['records'])} records checked against docs and fixtures: "
          f"{'drift found' if problems else 'no drift'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
