#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Two drover-watcher daemons on one --config-dir: the second refuses to
start (exit 1, naming the dir and the first one's pid) and the first keeps
running; once the first is killed (-9: only the kernel releases its lock)
a watcher starts on that dir again. The first one's start removed the
temporary files that writers now gone left in its config dir and next to
its state files, and kept the one of a live other process.

No Consul is needed: the watchers point at a closed loopback port and keep
retrying (fail static); the lock and the sweep come before any of that.

usage: test_config_dir_lock.py DROVER_WATCHER TEMPLATE_DIR
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

# A daemon's start on a busy 2-CPU machine: exec, templates loaded, the
# engine made (the lock is taken there). Seen well under 1 s; generous.
START_BOUND_S = 30.0


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def watcher(binary, templates, root, name, cfg, port):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    args = [binary, "--consul-addr", "127.0.0.1:%d" % port, "--haproxy-cluster", "edge",
            "--kube-cluster", "prod-a", "--template-dir", templates, "--config-dir", cfg,
            "--haproxy-master-socket", d + "/{service}.master",
            "--haproxy-stats-socket", d + "/{service}.sock",
            "--haproxy-state-file", d + "/{service}.state",
            "--agent-state-file", d + "/agent.json", "--snapshot-file", d + "/snapshot.pb",
            "--metrics-addr", ""]
    log = open(os.path.join(root, name + ".log"), "wb")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT), log.name


def lock_holder(cfg):
    try:
        with open(os.path.join(cfg, ".drover-watcher.lock")) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def wait_for(what, cond, bound=START_BOUND_S):
    deadline = time.monotonic() + bound
    while not cond():
        if time.monotonic() > deadline:
            sys.exit("FAIL: %s not seen within %.0f s" % (what, bound))
        time.sleep(0.02)


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def main():
    binary, templates = sys.argv[1:3]
    root = tempfile.mkdtemp(prefix="drover-lock-")
    cfg = os.path.join(root, "cfg")
    os.makedirs(cfg)
    port = closed_port()
    procs = []
    try:
        gone, live = dead_pid(), os.getpid()
        crt_lists = os.path.join(cfg, "web.crt-lists")
        stale = [os.path.join(cfg, ".web.cfg.tmp.%d.0000abcd" % gone),
                 os.path.join(cfg, "web.fe.map.tmp.%d" % gone),
                 os.path.join(crt_lists, ".fe.crtlist.tmp.%d.0000abcd" % gone),
                 os.path.join(root, "a", ".agent.json.tmp.%d.0000abcd" % gone),
                 os.path.join(root, "a", ".web.state.tmp.%d.0000abcd" % gone)]
        kept = [os.path.join(cfg, ".web.fe.map.tmp.%d.0000abcd" % live),
                os.path.join(crt_lists, ".fe.crtlist.tmp.%d.0000abcd" % live),
                os.path.join(cfg, "notes.txt.tmp.%d" % gone)]  # not a name the watcher writes
        os.makedirs(os.path.join(root, "a"))
        os.makedirs(crt_lists)
        for p in stale + kept:
            open(p, "w").close()

        a, a_log = watcher(binary, templates, root, "a", cfg, port)
        procs.append(a)
        wait_for("watcher a holding the config dir's lock", lambda: lock_holder(cfg) == a.pid)
        # the sweep runs right after the lock is taken (the state files'
        # directory last): wait for it rather than race it
        wait_for("the start-up sweep to remove the temp files of a dead writer (%s)"
                 % ", ".join(os.path.relpath(p, root) for p in stale),
                 lambda: not any(os.path.exists(p) for p in stale))
        missing = [p for p in kept if not os.path.exists(p)]
        if missing:
            sys.exit("FAIL: the start-up sweep removed what is not its own: %s" % missing)
        print("ok: watcher a (pid %d) holds %s; stale temp files removed, others kept"
              % (a.pid, cfg))

        b, b_log = watcher(binary, templates, root, "b", cfg, port)
        procs.append(b)
        try:
            rc = b.wait(timeout=START_BOUND_S)
        except subprocess.TimeoutExpired:
            sys.exit("FAIL: watcher b still running %.0f s after its start on a taken "
                     "config dir" % START_BOUND_S)
        out = open(b_log, errors="replace").read()
        if rc != 1 or cfg not in out or ("pid %d" % a.pid) not in out:
            sys.exit("FAIL: watcher b: exit %s, log must name %s and pid %d:\n%s"
                     % (rc, cfg, a.pid, out[-2000:]))
        if a.poll() is not None or lock_holder(cfg) != a.pid:
            sys.exit("FAIL: watcher a stopped or lost its lock when b was refused")
        print("ok: watcher b refused (exit 1): %s"
              % next(l for l in out.splitlines() if "in use" in l).strip())

        a.send_signal(signal.SIGKILL)
        a.wait()
        c, _ = watcher(binary, templates, root, "c", cfg, port)
        procs.append(c)
        wait_for("watcher c holding the lock after a's kill -9", lambda: lock_holder(cfg) == c.pid)
        print("ok: after kill -9 of a, watcher c (pid %d) holds the config dir" % c.pid)
        c.send_signal(signal.SIGTERM)
        try:
            c.wait(timeout=START_BOUND_S)
        except subprocess.TimeoutExpired:
            sys.exit("FAIL: watcher c did not stop within %.0f s of SIGTERM" % START_BOUND_S)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["rm", "-rf", root], check=False)
    print("PASS")


if __name__ == "__main__":
    main()
