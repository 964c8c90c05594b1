# SPDX-License-Identifier: Apache-2.0
"""droverctl serve, the Slack slash-command endpoint, against a real Consul
dev agent: a correctly signed request from an allowed user in an allowed
channel applies its command (author = Slack user, source = slack); a bad
signature, a stale timestamp, a replay, an unknown user or channel, an
unsigned request are refused with 401/403 and KV is left exactly as it
was. The config lifecycle verbs (apply from --config-dir, promote, abort,
history, rollback) go through the same signing and allow-list."""

import hashlib
import hmac
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctllib import KV, check, consul_addr, write_fleet  # noqa: E402 (puts tests/lib on the path)
from drover_testlib import http, run_main, stop_process  # noqa: E402

SECRET = b"8f742231b10e8888abcd99yyyzzz85a5"


def sign(ts, body, secret=SECRET):
    mac = hmac.new(secret, b"v0:" + str(ts).encode() + b":" + body, hashlib.sha256)
    return "v0=" + mac.hexdigest()


class Server:
    def __init__(self, binary, addr, root, secret_file, log_path, extra=()):
        # the daemon's log goes to a file (a pipe nobody reads could fill up)
        self.log = open(log_path, "w")
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [binary, "--consul-addr", addr, "--kv-prefix", root, "--haproxy-cluster", "edge",
             "--director-cluster", "dc1", "--cluster", "prod-a", "serve", "--listen",
             "127.0.0.1:0", "--slack-signing-secret-file", secret_file, "--allow-users",
             "U1,U2", "--allow-channels", "C1", *extra],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        check(line.startswith("droverctl serve: listening on port "),
              f"serve did not start: {line!r} {open(log_path).read()}")
        self.port = int(line.split()[-1])

    def post(self, fields, ts=None, sig=None, headers=True, raw=None, path="/slack/command"):
        body = raw if raw is not None else urllib.parse.urlencode(fields).encode()
        ts = int(time.time()) if ts is None else ts
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        if headers:
            h["X-Slack-Request-Timestamp"] = str(ts)
            h["X-Slack-Signature"] = sig if sig is not None else sign(ts, body)
        st, out, _ = http("POST", f"http://127.0.0.1:{self.port}{path}", body, h, timeout=30)
        return st, json.loads(out), body, h

    def stop(self):
        rc = stop_process(self.proc, timeout=20)
        self.log.close()
        return rc


TRIGGER = itertools.count(1)


def form(text, user="U1", name="alice", channel="C1"):
    # a fresh trigger_id per request, as Slack sends: equal bodies within
    # one second would carry equal signatures, which is a replay
    return {"token": "x", "team_id": "T1", "channel_id": channel, "channel_name": "ops",
            "user_id": user, "user_name": name, "command": "/drover", "text": text,
            "response_url": "https://hooks.slack.invalid/commands/1",
            "trigger_id": f"1.2.{next(TRIGGER)}"}


S = {}  # what cleanup() and diagnostics() need: kv, tmp, srv


def main():
    binary = sys.argv[1]
    addr = consul_addr()
    root = f"test-ctl-slack-{os.getpid()}/"
    kv = S["kv"] = KV(addr, root)
    kv.delete_tree()
    tmp = S["tmp"] = tempfile.mkdtemp(prefix="droverctl-slack-")
    secret_file = os.path.join(tmp, "secret")
    with open(secret_file, "wb") as f:
        f.write(SECRET + b"\n")
    write_fleet(kv)
    configs = os.path.join(tmp, "configs")
    os.mkdir(configs)
    extra = ["--config-dir", configs]
    if len(sys.argv) > 2:  # the watcher's templates, for config apply's check
        extra += ["--template-dir", sys.argv[2]]
    srv = S["srv"] = Server(binary, addr, root, secret_file, os.path.join(tmp, "serve.log"),
                            extra)
    run(srv, kv, binary, addr, root)
    config_flow(srv, kv, configs)
    check(srv.stop() == 0, "serve did not exit cleanly on SIGTERM")
    print("ok")


def diagnostics():
    if "srv" in S:
        S["srv"].stop()
        sys.stderr.write("--- droverctl serve log ---\n" + open(S["srv"].log_path).read())


def cleanup():
    if "srv" in S:
        S["srv"].stop()
    if "kv" in S:
        S["kv"].delete_tree()
    if "tmp" in S:
        shutil.rmtree(S["tmp"], ignore_errors=True)


def refused(srv, kv, what, status, expect_text, **kw):
    snap = kv.dump()
    st, doc, body, h = srv.post(**kw)
    check(st == status, f"{what}: HTTP {st} {doc}, want {status}")
    check(doc.get("response_type") == "ephemeral" and expect_text in doc.get("text", ""),
          f"{what}: {doc}")
    check(kv.dump() == snap, f"{what}: KV changed")


def run(srv, kv, binary, addr, root):
    # the valid request applies
    st, doc, body, h = srv.post(form("drain node-a --reason 'disk swap'"))
    check(st == 200 and doc["response_type"] == "in_channel", (st, doc))
    check(doc["text"].startswith("alice: drained node/prod-a/node-a"), doc)
    v = kv.get_json("maintenance/node/prod-a/node-a")
    check(v["state"] == "drain" and v["reason"] == "disk swap" and v["author"] == "alice", v)
    audit = kv.audit()
    check(len(audit) == 1 and audit[0][1]["source"] == "slack" and
          audit[0][1]["author"] == "alice", audit)

    # the same request again, byte for byte: a replay
    refused(srv, kv, "replay", 401, "replayed", fields=None, raw=body,
            ts=int(h["X-Slack-Request-Timestamp"]), sig=h["X-Slack-Signature"])

    f = form("drain node-b")
    ts = int(time.time())
    raw = urllib.parse.urlencode(f).encode()
    refused(srv, kv, "bad signature", 401, "bad request signature", fields=f,
            sig=sign(ts, raw, b"wrong secret"), ts=ts)
    refused(srv, kv, "signature of another body", 401, "bad request signature", fields=f,
            raw=raw.replace(b"node-b", b"node-c"), sig=sign(ts, raw), ts=ts)
    old = int(time.time()) - 400
    refused(srv, kv, "old timestamp", 401, "stale request", fields=f, ts=old,
            sig=sign(old, raw))
    future = int(time.time()) + 400
    refused(srv, kv, "future timestamp", 401, "stale request", fields=f, ts=future,
            sig=sign(future, raw))
    refused(srv, kv, "unsigned", 401, "unsigned request", fields=f, headers=False)
    refused(srv, kv, "unknown user", 403, "not allowed", fields=form("drain node-b", user="U9"))
    refused(srv, kv, "unknown channel", 403, "not allowed",
            fields=form("drain node-b", channel="C9"))
    refused(srv, kv, "author from Slack", 200, "cannot be set from Slack",
            fields=form("drain node-b --author mallory"))
    refused(srv, kv, "bad command", 200, "unknown command",
            fields=form("explode node-b"))
    refused(srv, kv, "unknown target", 200, "unknown target", fields=form("drain node-q"))
    refused(srv, kv, "unterminated quote", 200, "unterminated",
            fields=form("drain node-b --reason 'x"))
    refused(srv, kv, "bad form", 400, "bad %-escape", fields=None, raw=b"text=%zz&user_id=U1")

    # a rule refusal: node-a is drained; draining node-b and node-c too
    # would leave 3 of 4 be_web servers out
    st, doc, _, _ = srv.post(form("maint node-b --reason kernel", user="U2", name="bob"))
    check(st == 200 and doc["response_type"] == "in_channel", doc)
    refused(srv, kv, "share", 200, "out of service", fields=form("drain node-c"))

    # read-only commands answer ephemerally
    st, doc, _, _ = srv.post(form("status"))
    check(st == 200 and doc["response_type"] == "ephemeral" and
          "node/prod-a/node-b: maint" in doc["text"], doc)
    st, doc, _, _ = srv.post(form("history --limit 1"))
    check(st == 200 and "bob (slack) maint node/prod-a/node-b" in doc["text"], doc)
    st, doc, _, _ = srv.post(form("help"))
    check(st == 200 and "director fill|activate" in doc["text"], doc)
    # GET is not a slash command
    st, _, _ = http("GET", f"http://127.0.0.1:{srv.port}/slack/command", timeout=10)
    check(st == 405, st)

    # several commands at once: each runs on the thread pool, each gets
    # its own deferred answer
    results = [None] * 8

    def one(i):
        results[i] = srv.post(form(f"status node/prod-a/node-{'abc'[i % 3]}"))[:2]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for i, r in enumerate(results):
        check(r is not None and r[0] == 200 and f"node-{'abc'[i % 3]}" in r[1]["text"],
              f"concurrent request {i}: {r}")

    # Slack's certificate check of the URL is answered and does nothing
    st, doc, _, _ = srv.post({"ssl_check": "1", "token": "x"})
    check(st == 200 and doc["text"] == "", doc)

    # the outcomes are counted
    st, body, _ = http("GET", f"http://127.0.0.1:{srv.port}/metrics", timeout=10)
    check(st == 200, st)
    metrics = body.decode()
    for line in ['drover_ctl_slack_requests_total{result="applied"} 2',
                 'drover_ctl_slack_requests_total{result="replay"} 1',
                 'drover_ctl_slack_requests_total{result="forbidden"} 2',
                 'drover_ctl_slack_requests_total{result="stale"} 2']:
        check(line in metrics, f"{line!r} not in /metrics:\n{metrics}")

    # the audit trail has exactly the two applied changes
    audit = [a for _, a in kv.audit()]
    check([(a["action"], a["author"]) for a in audit] == [("drain", "alice"), ("maint", "bob")],
          audit)

    hostile_clients(srv)


def config_flow(srv, kv, configs):
    """config apply/promote/abort/history/rollback from Slack. No watcher
    runs here: proxy-a's status entry is written by hand, so the canary is
    never seen applied and promote needs --force."""
    kv.put("status/proxy-a/haproxy", {
        "host": "proxy-a", "role": "haproxy", "cluster": "edge", "version": "0.1.0",
        "started": "2026-11-23T13:00:00Z", "updated": "2026-11-23T13:00:00Z", "kv_index": 1,
        "snapshot": "", "guards": [], "services": {}})
    web = kv.get_json("haproxy/edge/services/web")
    web["timeouts"] = {"client": "31s"}
    with open(os.path.join(configs, "web.json"), "w") as f:
        json.dump({"haproxy/edge/services/web": web}, f)
    n_audit = len(kv.audit())
    refused(srv, kv, "a path from Slack", 200, "not a file name in the config directory",
            fields=form("config apply ../secret --canary proxy-a"))
    refused(srv, kv, "a canary host not in the fleet", 200, "not in the fleet",
            fields=form("config apply web.json --canary proxy-z"))
    refused(srv, kv, "--wait from Slack", 200, "command line only",
            fields=form("config apply web.json --canary proxy-a --wait 5s"))
    refused(srv, kv, "config from an unknown user", 403, "not allowed",
            fields=form("config abort", user="U9"))
    refused(srv, kv, "check from Slack", 200, "run from the command line",
            fields=form("config check web.json"))
    st, doc, _, _ = srv.post(form("config apply web.json --canary proxy-a --reason slower"))
    check(st == 200 and doc["response_type"] == "in_channel" and
          doc["text"].startswith("alice: staged version 1 for cluster edge on canary proxy-a"),
          doc)
    check(kv.get_json("haproxy/edge/canary")["canary"] == ["proxy-a"], kv.dump())
    refused(srv, kv, "promote before the canary applied", 200, "use --force",
            fields=form("config promote"))
    st, doc, _, _ = srv.post(form("config promote --force", user="U2", name="bob"))
    check(st == 200 and "bob: version 1 of cluster edge is live" in doc["text"], doc)
    check(kv.get_json("haproxy/edge/services/web")["timeouts"] == {"client": "31s"}, kv.dump())
    check(kv.get_json("haproxy/edge/canary") is None, "staged entry left after promote")
    st, doc, _, _ = srv.post(form("config history"))
    check(st == 200 and doc["response_type"] == "ephemeral" and "live: version 1" in doc["text"]
          and "v1 " in doc["text"] and 'bob  change (canary proxy-a) "slower"' in doc["text"],
          doc)
    st, doc, _, _ = srv.post(form("config abort"))
    check(st == 200 and "nothing is staged" in doc["text"], doc)
    st, doc, _, _ = srv.post(form("config rollback 1 --now"))
    check(st == 200 and "no change" in doc["text"], doc)
    audit = [a for _, a in kv.audit()][n_audit:]
    check([(a["action"], a["author"], a["source"]) for a in audit] ==
          [("config-apply", "alice", "slack"), ("config-promote", "bob", "slack")], audit)


def hostile_clients(srv):
    """Connections held open without a word (more than the 256 the server
    keeps) cannot lock Slack out, and a flood of unsigned requests is
    logged as a few lines, not one per request (issue 20)."""
    held = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(400)]
    try:
        t0 = time.monotonic()
        st, doc, _, _ = srv.post(form("status node/prod-a/node-a"))
        took = time.monotonic() - t0
        check(st == 200 and "node-a" in doc["text"], (st, doc))
        check(took < 5.0, f"signed command answered after {took:.1f} s with 400 idle connections")
    finally:
        for c in held:
            c.close()
    before = open(srv.log_path).read().count("refusing request from")
    for _ in range(50):
        st, _, _, _ = srv.post(form("status"), headers=False)
        check(st == 401, st)
    lines = open(srv.log_path).read().count("refusing request from") - before
    check(lines <= 1, f"{lines} log lines for 50 unsigned requests (want one per 10 s at most)")


if __name__ == "__main__":
    run_main(main, diagnostics, cleanup)
