#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Check a rendered chart against the programs it runs (their --help).

    check_chart_env.py BUILD_DIR RENDER.json...

RENDER.json: the objects of one `helm template` (validate-k8s.js
--json-out). For every container of a workload whose command is a drover
program, that program's `--help` (built in BUILD_DIR) must list
  - every environment variable the container sets whose name starts with
    DROVER_ or CONSUL_ (as `env: NAME`),
  - every `--flag` among its args (after the command word, if any),
every option the help marks "(required)" must be set, by its environment
variable or its flag, and every path option (--*-file, --*-dir,
--*-socket; set or left at its default) must lie under one of the
container's volume mounts: the root file system is read-only, so a path
outside the mounts is one the program cannot write or a socket it cannot
reach (the watcher's crashloop of issue 17). Paths that come from the image
(IMAGE_PATHS) are exempt. Every pod template of a workload also carries
the recommended app.kubernetes.io labels (POD_LABELS). Prints one line per
problem; exit 1 if any.
"""

import json
import os
import re
import subprocess
import sys

# program -> folder of the build tree holding it
PROGRAMS = {
    "drover-exporter": "exporter",
    "drover-watcher": "watcher",
    "drover-agent-checker": "agent-checker",
    "drover-director": "xdp-lb",
    "droverctl": "ctl",
}
WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob"}
# Path options read from the image itself, not from a volume.
IMAGE_PATHS = {"--template-dir", "--haproxy-bin"}
PATH_OPTION = re.compile(r"-(file|dir|socket)$")
POD_LABELS = ["app.kubernetes.io/" + k for k in
              ("name", "instance", "version", "component", "part-of", "managed-by")]
OPTION = re.compile(r"^  (--[a-z0-9-]+)")


def parse_help(text):
    """{flag: {"env": [names], "required": bool, "default": str or None}}
    of a --help text."""
    opts, cur = {}, None
    for line in text.splitlines():
        m = OPTION.match(line)
        if m:
            cur = opts.setdefault(m.group(1), {"env": [], "required": False, "default": None})
            continue
        if cur is None:
            continue
        if not line.startswith("      "):
            cur = None  # the end of the option's block
            continue
        if "(required)" in line:
            cur["required"] = True
        m = re.search(r"\bdefault: (\S+)", line)
        if m and m.group(1) != "(none)":
            cur["default"] = m.group(1)
        m = re.search(r"\benv: (.*)$", line)
        if m:
            cur["env"] += re.findall(r"\b[A-Z][A-Z0-9_]+\b", m.group(1))
    return opts


_help_cache = {}


def program_help(build, prog, command):
    key = (prog, command)
    if key not in _help_cache:
        path = os.path.join(build, PROGRAMS[prog], prog)
        argv = [path] + ([command] if command else []) + ["--help"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise SystemExit("%s: exit %d\n%s" % (" ".join(argv), p.returncode, p.stderr))
        _help_cache[key] = parse_help(p.stdout)
    return _help_cache[key]


def flag_value(argv, flag):
    """The value of --flag in argv (--flag V or --flag=V), else None."""
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def pod_spec(obj):
    spec = obj.get("spec") or {}
    if obj["kind"] == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def check_container(build, where, c, problems):
    argv = list(c.get("command") or []) + list(c.get("args") or [])
    if not argv or os.path.basename(argv[0]) not in PROGRAMS:
        return 0
    prog = os.path.basename(argv[0])
    # a command word (drover-watcher director ...) is the first non-flag
    command = argv[1] if len(argv) > 1 and not argv[1].startswith("-") else None
    opts = program_help(build, prog, command)
    env_of = {e: flag for flag, o in opts.items() for e in o["env"]}
    env_set = {e["name"] for e in c.get("env") or [] if e.get("name")}
    for name in sorted(env_set):
        if name.startswith(("DROVER_", "CONSUL_")) and name not in env_of:
            problems.append("%s: env %s is no option of %s%s" %
                            (where, name, prog, " " + command if command else ""))
    flags = set()
    for a in argv[1:]:
        if a.startswith("--"):
            flag = a.split("=", 1)[0]
            flags.add(flag)
            if flag not in opts and flag not in ("--help", "--version", "--config"):
                problems.append("%s: arg %s is no option of %s" % (where, flag, prog))
    env_val = {e["name"]: e.get("value") for e in c.get("env") or [] if e.get("name")}
    mounts = [m["mountPath"].rstrip("/") for m in c.get("volumeMounts") or []]
    for flag, o in sorted(opts.items()):
        if not PATH_OPTION.search(flag) or flag in IMAGE_PATHS:
            continue
        value = next((env_val[e] for e in o["env"] if env_val.get(e)), o["default"])
        value = flag_value(argv, flag) or value
        if not value or not value.startswith("/"):
            continue
        fixed = value.split("{", 1)[0]  # {service}: the part before it
        if not any(fixed == m or fixed.startswith(m + "/") for m in mounts):
            problems.append("%s: %s %s is under no volume mount (%s)" %
                            (where, flag, value, ", ".join(mounts) or "none"))
    for flag, o in sorted(opts.items()):
        if o["required"] and flag not in flags and not env_set & set(o["env"]):
            problems.append("%s: %s requires %s (env %s); the chart sets neither" %
                            (where, prog, flag, ", ".join(o["env"]) or "none"))
    return 1


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    build = sys.argv[1]
    problems, checked = [], 0
    for path in sys.argv[2:]:
        with open(path) as f:
            objs = json.load(f)
        for obj in objs:
            if obj.get("kind") not in WORKLOADS:
                continue
            spec = pod_spec(obj)
            tpl = obj.get("spec", {}).get("template", {})
            labels = (tpl.get("metadata") or {}).get("labels") or {}
            missing = [k for k in POD_LABELS if not labels.get(k)]
            if obj["kind"] != "CronJob" and missing:
                problems.append("%s: %s/%s pod template lacks %s" % (
                    os.path.basename(path), obj["kind"], obj["metadata"]["name"],
                    ", ".join(missing)))
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                where = "%s: %s/%s container %s" % (os.path.basename(path), obj["kind"],
                                                    obj["metadata"]["name"], c.get("name"))
                checked += check_container(build, where, c, problems)
    for p in problems:
        print("FAIL " + p)
    print("%d drover containers checked against their --help, %d problem(s)" %
          (checked, len(problems)))
    if checked == 0:
        print("FAIL no drover container found: nothing was checked")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
