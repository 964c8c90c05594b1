#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/exporter/pages.py: the list pages the exporter receives in the
benchmark, saved as files, so the build can be measured without the
network (bench_export_build, callgrind.sh).

usage: pages.py DIR [services=5000] [nodes=500] [limit=500]

Starts the Kubernetes API fixture (tests/kube) with the objects
bench.py generates, GETs /api/v1/services and /api/v1/nodes page by page
with ?limit (the exporter's default page size) over TLS with the token,
and writes each body unchanged to DIR/services-NNN.json and
DIR/nodes-NNN.json.
"""
import json
import os
import ssl
import sys
import tempfile
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "lib"))
from drover_testlib import KubeFixture  # noqa: E402


def fetch_pages(kube, path, limit, out_dir, name):
    ctx = ssl.create_default_context(cafile=os.path.join(kube.dir, "ca.crt"))
    with open(os.path.join(kube.dir, "token")) as f:
        token = f.read().strip()
    cont, n = None, 0
    while True:
        q = {"limit": str(limit)}
        if cont:
            q["continue"] = cont
        req = urllib.request.Request("%s%s?%s" % (kube.addr, path, urllib.parse.urlencode(q)),
                                     headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, context=ctx, timeout=120) as r:
            body = r.read()
        with open(os.path.join(out_dir, "%s-%03d.json" % (name, n)), "wb") as f:
            f.write(body)
        n += 1
        cont = json.loads(body)["metadata"].get("continue")
        if not cont:
            return n


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    out_dir = sys.argv[1]
    n_svc = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    n_node = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    limit = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="drover-bench-pages-")
    kube = KubeFixture(os.path.join(work, "kube"), "--tls", "--seed", "empty",
                       "--service-node-port-range", "20000-32767", timeout=600)
    try:
        kube.ctl("generate", {"services": n_svc, "nodes": n_node, "namespaces": 20,
                              "annotations": {"drover.io/exported": "true"}}, timeout=600)
        s = fetch_pages(kube, "/api/v1/services", limit, out_dir, "services")
        n = fetch_pages(kube, "/api/v1/nodes", limit, out_dir, "nodes")
        print("pages: %d of services, %d of nodes (limit %d) in %s" % (s, n, limit, out_dir))
    finally:
        kube.stop()


if __name__ == "__main__":
    main()
