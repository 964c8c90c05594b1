#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Check the default render of the drover chart against the chart's contract.

Input: the JSON array of rendered objects that validate-k8s.js writes with
--json-out (schema validity is that tool's job). The contract, from the
exporter issue: a Deployment with 2 replicas (leader election makes that
safe); a ServiceAccount bound to a least-privilege ClusterRole (get, list,
watch on services and nodes, nothing else); probes on /healthz and /readyz;
a metrics port with Prometheus scrape annotations; the Consul ACL token from
a Secret; resources set; no DaemonSet unless asked for.

Prints every violation and exits 1 if there is any.
"""

import json
import sys

ALLOWED_VERBS = {"get", "list", "watch"}
NEEDED = {(r, v) for r in ("services", "nodes") for v in ALLOWED_VERBS}


def by_kind(objs, kind):
    return [o for o in objs if o.get("kind") == kind]


def check_rbac(objs, sa_name, problems):
    granted = set()
    roles = {o["metadata"]["name"]: o for o in by_kind(objs, "ClusterRole")}
    for r in by_kind(objs, "Role"):
        problems.append("Role %s: the exporter needs no namespaced "
                        "permissions" % r["metadata"]["name"])
    for name, role in roles.items():
        for rule in role.get("rules") or []:
            groups = set(rule.get("apiGroups") or [])
            res = set(rule.get("resources") or [])
            verbs = set(rule.get("verbs") or [])
            if groups != {""}:
                problems.append("ClusterRole %s: apiGroups %s, want only the "
                                "core group" % (name, sorted(groups)))
            if not res <= {"services", "nodes"} or rule.get(
                    "resourceNames") or rule.get("nonResourceURLs"):
                problems.append("ClusterRole %s: resources %s beyond "
                                "services and nodes" % (name, sorted(res)))
            if not verbs <= ALLOWED_VERBS:
                problems.append("ClusterRole %s: verbs %s beyond get/list/"
                                "watch" % (name, sorted(verbs - ALLOWED_VERBS)))
            granted |= {(r, v) for r in res for v in verbs}
    missing = NEEDED - granted
    if missing:
        problems.append("ClusterRole rules miss %s" % sorted(missing))
    bound = False
    for b in by_kind(objs, "ClusterRoleBinding"):
        ref = b.get("roleRef", {})
        subjects = b.get("subjects") or []
        if ref.get("kind") == "ClusterRole" and ref.get("name") in roles and \
                any(s.get("kind") == "ServiceAccount" and
                    s.get("name") == sa_name for s in subjects):
            bound = True
    if not bound:
        problems.append("no ClusterRoleBinding binds the ClusterRole to "
                        "ServiceAccount %s" % sa_name)


def port_numbers(container):
    out = {}
    for p in container.get("ports") or []:
        out[str(p.get("containerPort"))] = p
        if p.get("name"):
            out[p["name"]] = p
    return out


def check_probe(c, kind, path, problems):
    probe = c.get(kind)
    if not probe:
        problems.append("container %s has no %s" % (c["name"], kind))
        return
    get = probe.get("httpGet") or {}
    if get.get("path") != path:
        problems.append("container %s %s path is %r, want %r"
                        % (c["name"], kind, get.get("path"), path))
    if str(get.get("port")) not in port_numbers(c):
        problems.append("container %s %s port %r is not a declared port"
                        % (c["name"], kind, get.get("port")))


def uses_secret(pod):
    secret_volumes = {v["name"] for v in pod.get("volumes") or []
                      if "secret" in v}
    for c in pod.get("containers") or []:
        for e in c.get("env") or []:
            if (e.get("valueFrom") or {}).get("secretKeyRef"):
                return True
        for e in c.get("envFrom") or []:
            if e.get("secretRef"):
                return True
        for m in c.get("volumeMounts") or []:
            if m.get("name") in secret_volumes:
                return True
    return False


def check(objs):
    problems = []
    deps = by_kind(objs, "Deployment")
    if len(deps) != 1:
        problems.append("want exactly one Deployment, found %d" % len(deps))
        return problems
    dep = deps[0]
    if dep["spec"].get("replicas") != 2:
        problems.append("Deployment replicas %r, want 2"
                        % dep["spec"].get("replicas"))
    tmpl = dep["spec"]["template"]
    pod = tmpl.get("spec", {})
    sa = pod.get("serviceAccountName")
    if not sa or sa not in {o["metadata"]["name"]
                            for o in by_kind(objs, "ServiceAccount")}:
        problems.append("Deployment does not run as a ServiceAccount of "
                        "the chart (serviceAccountName %r)" % sa)
    else:
        check_rbac(objs, sa, problems)
    ann = tmpl.get("metadata", {}).get("annotations") or {}
    if ann.get("prometheus.io/scrape") != "true":
        problems.append("pod template lacks prometheus.io/scrape: \"true\"")
    containers = pod.get("containers") or []
    if not containers:
        problems.append("Deployment has no containers")
    declared = {}
    for c in containers:
        declared.update(port_numbers(c))
        check_probe(c, "livenessProbe", "/healthz", problems)
        check_probe(c, "readinessProbe", "/readyz", problems)
        res = c.get("resources") or {}
        if not res.get("requests") or not (res.get("limits") or {}).get(
                "memory"):
            problems.append("container %s needs resource requests and a "
                            "memory limit" % c["name"])
    if ann.get("prometheus.io/port") not in declared:
        problems.append("prometheus.io/port %r is not a declared container "
                        "port" % ann.get("prometheus.io/port"))
    if not uses_secret(pod):
        problems.append("the Consul ACL token does not come from a Secret")
    for ds in by_kind(objs, "DaemonSet"):
        problems.append("DaemonSet %s is rendered by default (must be off)"
                        % ds["metadata"]["name"])
    return problems


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_chart_policy.py RENDERED.json")
    with open(sys.argv[1]) as f:
        objs = json.load(f)
    problems = check(objs)
    for p in problems:
        print("policy: %s" % p)
    print("check_chart_policy: %d objects, %d problems" % (len(objs),
                                                           len(problems)))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
