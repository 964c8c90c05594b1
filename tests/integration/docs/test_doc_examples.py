#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The docs' examples, run as written (docs_examples).

Every fenced block in docs/*.md right after a marker

    <!-- doc-example: kv KEY -->          a KV value: KEY under drover/v1/
    <!-- doc-example: sh NAME -->         shell lines, one command a line

is taken from the docs and used unchanged: a kv block is written into the
working directory as <last part of KEY>.json (the shell examples load it
with `consul kv put ... @web.json`), and the sh blocks run one line at a
time through bash in the order of SH_ORDER, where the last line of a
"background" block is a daemon left running. A marker this test does not
know fails it, so no example is skipped silently.

The lines use the programs' default paths and addresses (Consul on
127.0.0.1:8500, /etc/haproxy/drover, /run/drover, /var/lib/drover, the
installed template dir). So the test re-runs itself in its own network
namespace (its own loopback, nothing else) and mount namespace with tmpfs
over those directories and the source templates bound at the template
dir: the host's files are never touched. Root is needed (CTest SKIP
without it).

    test_doc_examples.py SOURCE_DIR BUILD_DIR
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC, BUILD = (os.path.abspath(a) for a in sys.argv[1:3])
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))
from drover_testlib import (haproxy_stat_row, http, log, metric, run_main,  # noqa: E402
                            run_steps, scrape, stop_process, tail, wait_until)

SKIP = 77
INNER = "DROVER_DOC_EXAMPLES_INNER"
MARKER = re.compile(r"^<!-- doc-example: (kv|sh) (\S+)(?: (background))? -->$")
# The sh blocks, in the order an operator follows them.
SH_ORDER = ["manual-start", "slot-mapping"]
KV_KNOWN = {"haproxy/edge/services/web"}
BINARIES = {"drover-watcher": "watcher", "droverctl": "ctl",
            "drover-agent-checker": "agent-checker"}

work = None
procs = []
examples = {}


def read_examples():
    """{(kind, name): (file, lines, background)} of every marked block."""
    found = {}
    docs = os.path.join(SRC, "docs")
    for fname in sorted(os.listdir(docs)):
        if not fname.endswith(".md"):
            continue
        lines = open(os.path.join(docs, fname)).read().split("\n")
        for i, line in enumerate(lines):
            m = MARKER.match(line.strip())
            if not m:
                if line.strip().startswith("<!-- doc-example"):
                    raise AssertionError("%s:%d: malformed marker %r" % (fname, i + 1, line))
                continue
            if i + 1 >= len(lines) or not lines[i + 1].startswith("```"):
                raise AssertionError("%s:%d: marker not followed by a fenced block" % (fname, i + 1))
            end = lines.index("```", i + 2)
            key = (m.group(1), m.group(2))
            if key in found:
                raise AssertionError("%s:%d: example %s %s marked twice" % ((fname, i + 1) + key))
            found[key] = ("%s:%d" % (fname, i + 1), lines[i + 2:end], bool(m.group(3)))
    return found


def template_dir():
    """The watcher's compiled-in --template-dir, from its --help."""
    out = subprocess.run([os.path.join(BUILD, "watcher", "drover-watcher"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"--template-dir STRING\n.*\n\s+default: (\S+)", out)
    assert m, "no --template-dir default in drover-watcher --help"
    return m.group(1)


def outer():
    """Re-run this script as root in fresh network + mount namespaces."""
    if os.geteuid() != 0:
        print("SKIP: needs root (network and mount namespaces, tmpfs mounts)")
        return SKIP
    for tool in ("unshare", "ip", "consul", "haproxy", "socat"):
        if not shutil.which(tool):
            print("SKIP: %s not found" % tool)
            return SKIP
    env = dict(os.environ, **{INNER: "1"})
    return subprocess.run(["unshare", "--net", "--mount", "--propagation", "private",
                           sys.executable] + sys.argv, env=env).returncode


def mount_tmpfs(path):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", path], check=True)


def setup_namespace():
    """Loopback up; tmpfs over the default paths; templates and binaries
    where the examples expect them."""
    global work
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    work = tempfile.mkdtemp(prefix="drover-doc-examples.")
    for d in ("/run", "/var/lib"):
        mount_tmpfs(d)
    assert os.path.isdir("/etc/haproxy"), "no /etc/haproxy (Debian's haproxy package makes it)"
    mount_tmpfs("/etc/haproxy")
    tpl = template_dir()
    # tmpfs over the deepest existing parent of the template dir (never
    # over / or /usr), then the source templates bound at the dir itself
    parent = tpl
    while not os.path.isdir(parent):
        parent = os.path.dirname(parent)
    assert parent not in ("/", "/usr"), "template dir %s too close to /" % tpl
    if parent != tpl:
        mount_tmpfs(parent)
    os.makedirs(tpl, exist_ok=True)
    subprocess.run(["mount", "--bind", os.path.join(SRC, "haproxy-templates"), tpl], check=True)
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir)
    for prog, sub in BINARIES.items():
        os.symlink(os.path.join(BUILD, sub, prog), os.path.join(bindir, prog))
    os.environ["PATH"] = bindir + ":" + os.environ["PATH"]
    for k in list(os.environ):
        if k.startswith(("CONSUL_", "DROVER_")):
            del os.environ[k]


def step_consul():
    """The local Consul agent every example assumes: 127.0.0.1:8500."""
    log_path = os.path.join(work, "consul.log")
    procs.append(("consul", log_path, subprocess.Popen(
        ["consul", "agent", "-dev", "-dns-port", "-1", "-grpc-port", "-1"],
        stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)))

    def leader():
        try:
            return http("GET", "http://127.0.0.1:8500/v1/status/leader", timeout=2)[1].strip() not in (b'""', b"")
        except OSError:
            return False
    # a dev agent elects itself in about a second; 30 s covers a loaded CI
    wait_until("consul dev agent leader on 127.0.0.1:8500", leader, timeout=30)


def step_examples_known():
    global examples
    examples = read_examples()
    known = {("sh", n) for n in SH_ORDER} | {("kv", k) for k in KV_KNOWN}
    unknown = sorted(set(examples) - known)
    missing = sorted(known - set(examples))
    assert not unknown, "doc examples this test does not run: %s" % unknown
    assert not missing, "doc examples this test expects but the docs lost: %s" % missing
    for (kind, name), (where, lines, _) in examples.items():
        if kind == "kv":
            value = json.loads("\n".join(lines))  # the example is valid JSON
            with open(os.path.join(work, name.rsplit("/", 1)[-1] + ".json"), "w") as f:
                json.dump(value, f)
            log("kv example", name, "from", where)


def run_block(name):
    """Run the lines of sh block NAME; returns {line: stdout}."""
    where, lines, background = examples[("sh", name)]
    outs = {}
    for i, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if background and i == len(lines) - 1:
            log_path = os.path.join(work, name + ".log")
            log("%s (background): %s" % (where, line))
            procs.append((name, log_path, subprocess.Popen(
                ["bash", "-c", "exec " + line], cwd=work,
                stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)))
            continue
        log("%s: %s" % (where, line))
        p = subprocess.run(["bash", "-c", line], cwd=work, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, "%s: `%s` exited %d\nstdout: %s\nstderr: %s" % (
            where, line, p.returncode, p.stdout, p.stderr)
        outs[line] = p.stdout
    return outs


def step_manual_start():
    run_block("manual-start")
    # Consul answers at once and the service is small: a snapshot is
    # applied within --wait-max (2 s) of the first read; 30 s for load
    wait_until("watcher /readyz 200 (snapshot applied)",
               lambda: http("GET", "http://127.0.0.1:9108/readyz", timeout=2)[0] == 200,
               timeout=30, retry_on=(OSError,))
    # the watcher created what a fresh host lacks
    for d in ("/var/lib/drover/watcher", "/var/lib/drover/agent-checker"):
        assert os.path.isdir(d), "the watcher did not create " + d
    wait_until("drover_watcher_services 1",
               lambda: metric("http://127.0.0.1:9108", "drover_watcher_services") == 1, timeout=10)
    sock = "/run/drover/haproxy-web.sock"
    for proxy, server in (("fe_web", "FRONTEND"), ("be_web", "BACKEND"), ("be_api", "BACKEND")):
        row = haproxy_stat_row(sock, proxy, server)
        assert row, "HAProxy serves no %s %s" % (proxy, server)
    assert haproxy_stat_row(sock, "fe_web", "FRONTEND")["status"] == "OPEN"
    # the entry's "metrics" bind: HAProxy's own exporter, per-server series
    samples = scrape("http://127.0.0.1:8405")
    for key in ('haproxy_frontend_current_sessions{proxy="fe_web"}',
                'haproxy_server_weight{proxy="be_api",server="slot1"}'):
        assert key in samples, "HAProxy's exporter on 127.0.0.1:8405 lacks " + key


def step_slot_mapping():
    outs = run_block("slot-mapping")
    show = [o for line, o in outs.items() if line.startswith("echo \"show servers state")][0]
    slot = None
    for row in show.splitlines():
        f = row.split()
        if len(f) > 4 and f[1] == "be_api" and f[4] == "10.1.2.5":
            slot = f[3]
    assert slot and slot.startswith("slot"), \
        "no slot of be_api at 10.1.2.5 (api-2) in `show servers state`:\n" + show
    # droverctl.md names it: the second static server takes the second slot
    assert slot == "slot2", "api-2 is in %s, droverctl.md says slot2" % slot

    def drained_in_state_file():
        try:
            with open("/var/lib/drover/agent-checker/state.json") as f:
                st = json.load(f)
        except (OSError, ValueError):
            return False
        return st.get("servers", {}).get("be_api/" + slot, {}).get("admin") == "drain"
    # the watcher applies a KV change after --wait-min/--runtime-wait (< 1 s)
    wait_until("be_api/%s drained in the agent-checker state file" % slot,
               drained_in_state_file, timeout=10)


def diagnostics():
    for name, path, _ in procs:
        print("--- %s log (tail)" % name)
        print(tail(path))


def cleanup():
    pidfile = "/run/drover/haproxy-web.pid"
    if os.path.exists(pidfile):
        try:
            os.kill(int(open(pidfile).read().split()[0]), 15)
        except (OSError, ValueError, IndexError):
            pass
    for _, _, p in reversed(procs):
        stop_process(p)
    if work:
        shutil.rmtree(work, ignore_errors=True)


def main():
    setup_namespace()
    run_steps([step_consul, step_examples_known, step_manual_start, step_slot_mapping])


if __name__ == "__main__":
    if not os.environ.get(INNER):
        sys.exit(outer())
    run_main(main, on_failure=diagnostics, cleanup=cleanup, deadline=170)
