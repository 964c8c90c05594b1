# SPDX-License-Identifier: Apache-2.0
"""The machine-readable KV schema (docs/kv-schema.json, generated from
common/kv_schema.c) for Python tests: which record a key is, and whether a
value a fixture writes is one the programs accept.

    from kv_schema import check_value
    problems = check_value("kube/prod-a/nodes/n1", {"addresses": [...], "eligible": True})
"""

import json
import os
import re

SCHEMA_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "kv-schema.json")
_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
          "object": dict, "array": list, "null": type(None)}


NODE_SHARDS = 16  # common/kv_key.h KV_NODE_SHARDS


def node_shard(name):
    """The shard of a kube node (common/kv_key.c kv_key_node_shard): FNV-1a
    (32 bit) of the name's bytes modulo NODE_SHARDS, as two hex digits."""
    h = 2166136261
    for b in name.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return "%02x" % (h % NODE_SHARDS)


def node_key(cluster, name):
    """Where the exporter writes a node's entry, below the root."""
    return f"kube/{cluster}/node-shards/{node_shard(name)}/{name}"


def load(path=SCHEMA_FILE):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _pattern(key):
    """Key pattern -> regex: <x> one segment, {a,b} alternatives, ... anything."""
    out, i = "", 0
    while i < len(key):
        if key[i] == "<":
            j = key.index(">", i)
            out += "[^/]+"
            i = j + 1
        elif key[i] == "{":
            j = key.index("}", i)
            out += "(?:" + "|".join(_pattern(a) for a in key[i + 1:j].split(",")) + ")"
            i = j + 1
        elif key.startswith("...", i):
            out += ".+"
            i += 3
        else:
            out += re.escape(key[i])
            i += 1
    return out


def record_for_key(rel_key, schema=None):
    """(name, record) of a key below the root, or (None, None)."""
    schema = schema or load()
    for name, rec in schema["records"].items():
        if re.fullmatch(_pattern(rec["key"]), rel_key):
            return name, rec
    return None, None


def _type_ok(types, v):
    # bool is an int in Python; JSON keeps them apart
    return any(isinstance(v, _TYPES[t]) and not (t in ("integer", "number") and
                                                 isinstance(v, bool))
               for t in types.split("|"))


def check_record(rec, value):
    """Problems of value as a record: missing required fields, undeclared
    fields, wrong types. [] when it is fine."""
    if not isinstance(value, dict):
        return [f"not a JSON object: {value!r}"]
    fields = rec["fields"]
    out = [f"required field {n} missing" for n, f in fields.items()
           if f["required"] and n not in value]
    for n, v in value.items():
        if n not in fields:
            out.append(f"field {n} is not in the schema")
        elif not _type_ok(fields[n]["type"], v):
            out.append(f"field {n}: {v!r} is not {fields[n]['type']}")
    return out


def check_value(rel_key, value, schema=None):
    name, rec = record_for_key(rel_key, schema)
    if not rec:
        return [f"key {rel_key} is no record of the schema"]
    if rec.get("reserved"):
        return [f"key {rel_key}: prefix reserved ({rec['reserved']})"]
    return [f"{rel_key} ({name}): {p}" for p in check_record(rec, value)]
