# SPDX-License-Identifier: Apache-2.0
"""drover's one test library: every Python test, benchmark and fleet script
talks to Consul, HAProxy, the daemons' metrics and its own processes through
it. Import with
    sys.path.insert(0, os.path.join(<source root>, "tests", "lib"))
    from drover_testlib import free_port, wait_until
Importing has no side effect. Ports come from the kernel (bind to port 0),
never fixed; waiting is polling against a deadline the caller derives from
what it waits for, never a sleep standing in for an assertion; every wait
names what it waited for when it gives up.

What is here, by section:
  harness             log, run_steps, run_main (one way to run a test script:
                      named steps, diagnostics on failure, cleanup always);
                      Checks (checks that go on after a failure, counted)
  ports and waiting   free_port, free_ports, wait_until, hold_for
  HTTP and metrics    http, parse_metrics, scrape, metric
  Consul              Consul (KV get/put/cas/delete/recurse/keys/txn, blocking
                      reads, sessions through request()), ConsulDev (an agent
                      -dev through consul-dev.sh, or the CTest fixture's),
                      consul_agent (either, for the length of a with block)
  HAProxy             haproxy_cmd (stats and master sockets), haproxy_stat,
                      haproxy_servers_state, haproxy_master_reloads, HAProxy
  processes           stop_process, program_env, run_program, write_atomic,
                      NotifySocket (a $NOTIFY_SOCKET read like systemd does)
  stand-ins           serve_http (NodePort "pods"), LineServer (agent-check
                      answerers), KubeFixture (tests/kube/kube-fixture.sh)
The shell harnesses (consul-dev.sh, scripts/fleet/lib.sh, the director and
ops tests) use the same code through the command line at the end of this
file (`python3 tests/lib/drover_testlib.py -h`)."""

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from http.server import BaseHTTPRequestHandler

SKIP = 77  # CTest SKIP_RETURN_CODE of the Python tests
LIB_DIR = os.path.dirname(os.path.abspath(__file__))
SRC_DIR = os.path.dirname(os.path.dirname(LIB_DIR))
CONSUL_DEV = os.path.join(LIB_DIR, "consul-dev.sh")
KUBE_FIXTURE = os.path.join(SRC_DIR, "tests", "kube", "kube-fixture.sh")
KV_ROOT = "drover/v1/"  # the programs' default --kv-prefix
T0 = time.time()  # when the test started (the library was imported)


# ---- harness ----

def log(*a):
    """A progress line, stamped with the seconds since the test started."""
    print("[%6.2f]" % (time.time() - T0), *a, flush=True)


def run_steps(steps, kind="step", args=()):
    """Run steps (functions, called with args) in order, each logged with
    its name (without a sc_/step_/test_ prefix) and its duration; the
    first failure propagates."""
    for fn in steps:
        name = fn.__name__
        if name.startswith(("sc_", "step_", "test_")):
            name = name.split("_", 1)[1]
        t = time.monotonic()
        log(kind, name)
        fn(*args)
        log(kind, name, "ok (%.1fs)" % (time.monotonic() - t))


def run_main(main, on_failure=None, cleanup=None, deadline=None):
    """The harness of a test script; does not return. Exits with main()'s
    return value (None: 0). An exception is printed with its traceback and
    then on_failure() prints diagnostics (best effort); cleanup() runs
    whatever happened. With deadline (s, set below the CTest TIMEOUT) the
    test ends itself with TimeoutError at that point, or on SIGTERM, so
    that cleanup still runs. A SystemExit from main (e.g. SKIP) passes
    through, after cleanup."""
    def expire(signum, frame):
        raise TimeoutError("the whole test ran past %d s (or was terminated)" % deadline)
    if deadline:
        signal.signal(signal.SIGALRM, expire)
        signal.signal(signal.SIGTERM, expire)
        signal.alarm(deadline)
    rc = 1
    try:
        rc = main()
        rc = 0 if rc is None else rc
    except Exception:  # noqa: BLE001 - reported, then cleaned up
        traceback.print_exc()
        if on_failure:
            try:
                on_failure()
            except Exception as e:  # noqa: BLE001 - best effort diagnostics
                print("(diagnostics failed: %r)" % e, flush=True)
    finally:
        if deadline:
            signal.alarm(0)
        if cleanup:
            cleanup()
    sys.exit(rc)


class Checks:
    """For tests made of many independent checks that go on after a
    failure: each check prints "ok   WHAT" or "FAIL WHAT"; finish() says
    how many failed and gives the exit status."""

    def __init__(self):
        self.failures = []

    def check(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            self.failures.append(what)
        return cond

    def fail(self, what):
        return self.check(False, what)

    def finish(self):
        """Exit status: 0 when every check held."""
        print(f"{len(self.failures)} failure(s)" if self.failures else "ok", flush=True)
        return 1 if self.failures else 0


# ---- ports and waiting ----

# Every port free_port/free_ports handed out in this process. bind(2) to
# port 0 draws at random from the ephemeral range (about 14,000 ports for
# it here), and a port comes back as soon as its probe socket closes: two
# ports a test picks before it binds them (a daemon's metrics port, the
# backends' port) then clash now and then (a watcher exited with "address
# already in use" once in the loaded suite). Within one test no port is
# handed out twice; other processes' picks can still race, which the
# starters of daemons handle.
_HANDED_OUT = set()
_HANDED_OUT_LOCK = threading.Lock()


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A TCP port the kernel just handed out on host, not handed out
    before in this process."""
    return free_ports(1, host=host, family=family)[0]


def free_ports(n, udp=False, host="127.0.0.1", family=socket.AF_INET):
    """n distinct free TCP ports on host (with udp, each also free for UDP),
    none handed out before in this process. Every probe is held until the
    last port is chosen, so the kernel cannot offer one twice."""
    held, ports = [], []
    with _HANDED_OUT_LOCK:
        try:
            while len(ports) < n:
                t = socket.socket(family, socket.SOCK_STREAM)
                held.append(t)
                t.bind((host, 0))
                p = t.getsockname()[1]
                if p in _HANDED_OUT:
                    continue
                if udp:
                    u = socket.socket(family, socket.SOCK_DGRAM)
                    held.append(u)
                    try:
                        u.bind((host, p))
                    except OSError:
                        continue
                ports.append(p)
            _HANDED_OUT.update(ports)
            return ports
        finally:
            for s in held:
                s.close()


def wait_until(what, fn, timeout=10.0, interval=0.05, retry_on=()):
    """Poll fn() until it returns a truthy value and return that; raise
    AssertionError naming `what` (and the last value) after timeout s.
    Exceptions of the types in retry_on count as "not yet" (a socket or
    file the program has not made yet); the last one is named too."""
    deadline = time.monotonic() + timeout
    last = err = None
    while time.monotonic() < deadline:
        try:
            last, err = fn(), None
        except retry_on as e:
            last, err = None, e
        if last:
            return last
        time.sleep(interval)
    msg = f"timed out after {timeout}s waiting for {what} (last: {last!r})"
    if err is not None:
        msg += f"; last exception: {err!r}"
    raise AssertionError(msg)


def hold_for(what, fn, duration, interval=0.05):
    """The negative check of wait_until: fn() must stay truthy on every poll
    for duration s (a window derived from what must not happen, e.g. some
    check intervals). Raise AssertionError naming `what` and the value that
    broke it."""
    deadline = time.monotonic() + duration
    while True:
        v = fn()
        if not v:
            raise AssertionError(f"{what} did not hold for {duration}s (got {v!r})")
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# ---- HTTP and metrics ----

# Loopback only: never through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def recv_all(sock):
    """Every byte sock sends until the peer closes."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def http(method, url, body=None, headers=None, timeout=30):
    """One request; returns (status, body bytes, headers). An HTTP error
    status is returned, not raised; a connection failure raises OSError.
    body: bytes as they are, str as UTF-8, anything else as JSON."""
    if body is not None and not isinstance(body, bytes):
        body = (body if isinstance(body, str) else json.dumps(body)).encode()
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers
    except HTTPException as e:
        # an answer cut short or garbled (the peer died mid-reply:
        # IncompleteRead, BadStatusLine) is a failed connection too; a load
        # client that caught only OSError died on it
        raise ConnectionError("%s %s: %s: %s" % (method, url, type(e).__name__, e)) from e


def _base_url(where):
    return where if isinstance(where, str) else "http://127.0.0.1:%d" % where


def parse_metrics(text):
    """Prometheus text -> {'name' or 'name{labels}': value} of every sample."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, val = line.rpartition(" ")
            out[key] = float(val)
    return out


def scrape(where, timeout=5):
    """Every sample of GET /metrics on where (a port on 127.0.0.1 or a base
    URL), as parse_metrics gives them."""
    st, body, _ = http("GET", _base_url(where) + "/metrics", timeout=timeout)
    assert st == 200, "GET %s/metrics: HTTP %d" % (_base_url(where), st)
    return parse_metrics(body.decode())


def metric_key(name, labels=None):
    """The sample key of name with labels ({k: v}, in the program's order)."""
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def metric(where, name, labels=None, default=0.0):
    """One sample of where's /metrics, or default if it is not there."""
    return scrape(where).get(metric_key(name, labels), default)


def metric_sum(samples, name, **labels):
    """Sum of the samples of name whose labels include the given ones."""
    total = 0.0
    for key, v in samples.items():
        base, _, rest = key.partition("{")
        if base == name and all(f'{k}="{lv}"' in rest for k, lv in labels.items()):
            total += v
    return total


# ---- Consul ----

class Consul:
    """Consul's HTTP API on addr (http://127.0.0.1:PORT), KV keys relative
    to root ("" for absolute keys). Values: bytes as they are, str as UTF-8,
    anything else as JSON."""

    def __init__(self, addr, root="", token=None):
        self.addr, self.root, self.token = addr, root, token

    def under(self, root):
        """The same agent with keys relative to root (below this root)."""
        return Consul(self.addr, self.root + root, self.token)

    def request(self, method, path, body=None, headers=None, timeout=10):
        """(status, body, headers) of one API call, path from /v1/ on."""
        h = dict(headers or {})
        if self.token:
            h.setdefault("X-Consul-Token", self.token)
        return http(method, self.addr + path, body, h, timeout)

    def _kv(self, key, **query):
        """The API path of key; query flags (True: present, None/False:
        absent) and values (cas=0 included) as Consul spells them."""
        q = "&".join(k if v is True else "%s=%s" % (k, urllib.parse.quote(str(v)))
                     for k, v in query.items() if v is not None and v is not False)
        return "/v1/kv/" + urllib.parse.quote(self.root + key) + ("?" + q if q else "")

    def _read(self, method, path, timeout=10):
        """A KV read: (status, body, index); a 404 is "no such key" only
        with X-Consul-Index (Consul's own), anything else is an error."""
        st, body, hdr = self.request(method, path, timeout=timeout)
        if st == 404 and hdr.get("X-Consul-Index") is None:
            raise AssertionError("GET %s: 404 without X-Consul-Index (not Consul?)" % path)
        assert st in (200, 404), "GET %s: HTTP %d %r" % (path, st, body[:200])
        return st, body, int(hdr.get("X-Consul-Index") or 0)

    def put(self, key, value, cas=None):
        """Write key; with cas (a ModifyIndex, 0 = only if absent) return
        whether Consul took it, otherwise assert it did."""
        st, out, _ = self.request("PUT", self._kv(key, cas=cas), value)
        assert st == 200, "PUT %s: HTTP %d %r" % (self.root + key, st, out)
        ok = out.strip() == b"true"
        assert ok or cas is not None, "PUT %s: %r" % (self.root + key, out)
        return ok

    def delete(self, key, recurse=False, cas=None):
        st, out, _ = self.request("DELETE", self._kv(key, recurse=recurse, cas=cas))
        assert st == 200, "DELETE %s: HTTP %d %r" % (self.root + key, st, out)
        return out.strip() == b"true"

    def delete_tree(self, sub=""):
        """Everything under root+sub."""
        return self.delete(sub, recurse=True)

    def entry(self, key, index=None, wait=None, timeout=10):
        """(entry dict with Value decoded to bytes, or None; X-Consul-Index).
        With index and wait: a blocking read."""
        st, body, idx = self._read("GET", self._kv(key, index=index, wait=wait), timeout)
        if st == 404:
            return None, idx
        e = json.loads(body)[0]
        e["Value"] = base64.b64decode(e["Value"]) if e.get("Value") else b""
        return e, idx

    def get(self, key):
        """The value (bytes) of key, or None."""
        e, _ = self.entry(key)
        return None if e is None else e["Value"]

    def get_json(self, key):
        v = self.get(key)
        return None if v is None else json.loads(v)

    def dump(self, sub="", decode=False):
        """{key below root: (value, ModifyIndex)} of everything under
        root+sub; values bytes, or str with decode."""
        st, body, _ = self._read("GET", self._kv(sub, recurse=True))
        out = {}
        for e in json.loads(body) if st == 200 else []:
            v = base64.b64decode(e["Value"]) if e.get("Value") else b""
            out[e["Key"][len(self.root):]] = (v.decode() if decode else v, e["ModifyIndex"])
        return out

    def values(self, sub=""):
        """{key below root: value str} under root+sub."""
        return {k: v for k, (v, _) in self.dump(sub, decode=True).items()}

    def keys(self, sub=""):
        st, body, _ = self._read("GET", self._kv(sub, keys=True))
        return [k[len(self.root):] for k in json.loads(body)] if st == 200 else []

    def txn(self, ops, timeout=30):
        """One transaction of KV ops ({"Verb": ..., "Key": <below root>,
        "Value": <as put() takes it>, ...}); returns (status, result)."""
        body = []
        for op in ops:
            op = dict(op, Key=self.root + op["Key"])
            if "Value" in op:
                v = op["Value"]
                if not isinstance(v, bytes):
                    v = (v if isinstance(v, str) else json.dumps(v)).encode()
                op["Value"] = base64.b64encode(v).decode()
            body.append({"KV": op})
        st, out, _ = self.request("PUT", "/v1/txn", body, timeout=timeout)
        return st, json.loads(out) if out.strip().startswith((b"{", b"[")) else out

    def txn_set(self, pairs, batch=64):
        """Set (key, value) pairs, batch at a time in one transaction each
        (64 is Consul's limit of ops per transaction)."""
        pairs = list(pairs)
        for i in range(0, len(pairs), batch):
            st, out = self.txn([{"Verb": "set", "Key": k, "Value": v}
                                for k, v in pairs[i:i + batch]])
            assert st == 200, "txn: HTTP %d %r" % (st, out)


class ConsulDev:
    """A real `consul agent -dev` on free loopback ports, through
    consul-dev.sh, with its state in a directory: the CTest fixture's
    (tests/lib/ConsulFixture.cmake, $DROVER_CONSUL_STATE) or one of our
    own. start/kill/restart/stop as consul-dev.sh documents them."""

    def __init__(self, state, script=CONSUL_DEV):
        self.state, self.script = state, script
        self.owned = False  # started here, so stopped here

    @classmethod
    def from_env(cls, own_state, script=CONSUL_DEV):
        """The fixture's agent if $DROVER_CONSUL_STATE names a running one;
        otherwise (run by hand) a private agent in own_state."""
        env = os.environ.get("DROVER_CONSUL_STATE")
        if env and os.path.exists(os.path.join(env, "addr")):
            return cls(env, script)
        return cls(own_state, script).start()

    def _run(self, cmd, *args, check=True):
        subprocess.run([self.script, cmd, self.state, *args], check=check,
                       stdout=subprocess.DEVNULL, stderr=None if check else subprocess.DEVNULL,
                       timeout=120)
        return self

    def start(self, *args):
        """Start (--acl, --tls, extra agent args); returns self."""
        self.owned = True
        return self._run("start", *args)

    def kill(self):
        return self._run("kill")

    def restart(self):
        return self._run("restart")

    def stop(self):
        """Stop the agent and remove its state (best effort, for cleanup)."""
        return self._run("stop", check=False)

    def close(self):
        """stop() if this object started the agent."""
        if self.owned:
            self.stop()

    def _file(self, name):
        with open(os.path.join(self.state, name)) as f:
            return f.read().strip()

    @property
    def addr(self):
        return self._file("addr")

    @property
    def master_token(self):
        return self._file("master-token")

    # with --tls (consul-dev.sh): HTTPS address, the test CA, the one name
    # the agent's certificate is valid for
    @property
    def https_addr(self):
        return self._file("https_addr")

    @property
    def ca_file(self):
        return os.path.join(self.state, "ca.pem")

    @property
    def tls_server_name(self):
        return self._file("tls_server_name")

    def client(self, root="", token=None):
        return Consul(self.addr, root, token)


@contextlib.contextmanager
def consul_agent():
    """`with consul_agent() as dev:` the CTest fixture's agent
    ($DROVER_CONSUL_STATE), or run by hand a private one in a temp dir,
    stopped and removed on the way out."""
    own = tempfile.mkdtemp(prefix="drover-consul-")
    dev = ConsulDev.from_env(os.path.join(own, "c"))
    try:
        yield dev
    finally:
        dev.close()
        shutil.rmtree(own, ignore_errors=True)


# ---- HAProxy ----

def haproxy_cmd(path, cmd, timeout=5):
    """One command on a HAProxy stats or master socket; the whole answer."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall((cmd + "\n").encode())
        s.shutdown(socket.SHUT_WR)
        out = []
        while True:
            d = s.recv(65536)
            if not d:
                return b"".join(out).decode()
            out.append(d)


def haproxy_stat(path):
    """`show stat` as a list of rows ({column: value})."""
    lines = [ln for ln in haproxy_cmd(path, "show stat").splitlines() if ln]
    hdr = lines[0].lstrip("# ").split(",")
    return [dict(zip(hdr, ln.split(","))) for ln in lines[1:]]


def haproxy_stat_row(path, proxy, server):
    """The `show stat` row of proxy/server (server FRONTEND or BACKEND for
    the proxy's own row), or None."""
    for r in haproxy_stat(path):
        if r.get("pxname") == proxy and r.get("svname") == server:
            return r
    return None


def haproxy_servers_state(path, backend):
    """{server name: {column: value}} of `show servers state BACKEND`."""
    text = haproxy_cmd(path, "show servers state " + backend)
    hdr = next(ln for ln in text.splitlines() if ln.startswith("# be_id"))[2:].split()
    out = {}
    for ln in text.splitlines():
        words = ln.split()
        # data rows start with the backend id; the first line is the version
        if ln[:1].isdigit() and len(words) > 1:
            row = dict(zip(hdr, words))
            out[row["srv_name"]] = row
    return out


def haproxy_master_reloads(path, timeout=10):
    """The master's reload counter (master CLI `show proc`). The master CLI
    refuses connections for a moment while it re-executes (once after
    start, and on every reload): retried for up to timeout s."""
    def once():
        for ln in haproxy_cmd(path, "show proc").splitlines():
            f = ln.split()
            if len(f) > 2 and f[1] == "master":
                return (int(f[2]),)  # a tuple: a count of 0 ends the wait too
        raise AssertionError("no master line in `show proc` on " + path)
    return wait_until("the master CLI on " + path, once, timeout, retry_on=OSError)[0]


class HAProxy:
    """A real HAProxy on a config: master-worker (-W -S master) when master
    is given, else in the foreground (-db). Log in log_path. extra: more
    config files loaded after cfg (a reload loads them too)."""

    def __init__(self, cfg, log_path, master=None, sock=None, extra=()):
        self.cfg, self.log_path, self.master, self.sock = cfg, log_path, master, sock
        self.extra = list(extra)
        self.proc = None

    def start(self, timeout=10):
        """Start; with a stats socket path, wait until it answers."""
        args = ["haproxy", "-W", "-S", self.master] if self.master else ["haproxy", "-db"]
        with open(self.log_path, "ab") as log:
            files = ["-f", self.cfg] + [a for f in self.extra for a in ("-f", f)]
            self.proc = subprocess.Popen(args + files, stdout=log,
                                         stderr=subprocess.STDOUT)
        if self.sock:
            wait_until("HAProxy stats socket " + self.sock,
                       lambda: self._alive() and haproxy_cmd(self.sock, "show info"),
                       timeout, retry_on=OSError)
        return self

    def _alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"haproxy exited with {self.proc.returncode}:\n{self.logs()}")
        return True

    def cmd(self, line):
        return haproxy_cmd(self.sock, line)

    def logs(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        return stop_process(self.proc)


# ---- processes and files ----

def stop_process(proc, sig=signal.SIGTERM, timeout=10):
    """Signal proc (if it still runs), wait up to timeout s, then SIGKILL;
    returns its exit status (negative: the signal that ended it)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def proc_stat_fields(pid):
    """The fields of /proc/PID/stat from the state letter on: [0] state,
    [1] parent pid, [11] and [12] user and system CPU in clock ticks. The
    command name before them may hold spaces and ')', so they are the words
    after the last ')' (as common/proc_stat.c reads them). OSError when
    there is no such process, ValueError for a line without ')'."""
    with open("/proc/%s/stat" % pid) as f:
        line = f.read()
    close = line.rfind(")")
    if close < 0:
        raise ValueError("/proc/%s/stat: no ')' after the command name: %r" % (pid, line))
    return line[close + 1:].split()


def program_env(extra=None):
    """The environment for a program under test: ours without CONSUL_* and
    DROVER_* (which the programs read as options), plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CONSUL_") and not k.startswith("DROVER_")}
    env.update(extra or {})
    return env


def run_program(argv, extra_env=None, timeout=60):
    """(exit status, stdout, stderr) of argv run in program_env(extra_env)."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       env=program_env(extra_env))
    return p.returncode, p.stdout, p.stderr


def tail(path, lines=40):
    """The last lines of a log file ("" if it cannot be read)."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def write_atomic(path, data, fsync=True):
    """Replace path (temp file + fsync + rename), as the watcher writes the
    agent state file: a reader sees the old or the new file, never half.
    data: str, or anything else as JSON. fsync=False for figures rewritten
    many times a second that need not survive a crash."""
    text = data if isinstance(data, str) else json.dumps(data)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.rename(tmp, path)


class NotifySocket:
    """A $NOTIFY_SOCKET read like systemd does: a thread drains it into
    messages (an unread datagram queue, 10 deep, would block the daemon's
    sd_notify)."""

    def __init__(self, path):
        self.path = path
        self.messages = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                d = self.sock.recv(4096)
            except OSError:
                return
            if not d:
                return  # shut down by close()
            self.messages.append(d.decode())

    def seen(self, word):
        return any(word in m for m in self.messages)

    def wait(self, word, timeout=10):
        """Wait until a message holding word (e.g. "READY=1") arrived."""
        wait_until(f"{word} on $NOTIFY_SOCKET", lambda: self.seen(word), timeout)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# ---- stand-ins: HTTP "pods", agent-check answerers, the kube API ----

class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # health checks hang up early; not our concern


def serve_http(host, port, body, keepalive=False):
    """A threaded HTTP server on host:port (0: any free port) answering
    every GET with body (bytes); keepalive: HTTP/1.1 persistent
    connections, else one request per connection. Serves from a daemon
    thread; returns the server (.server_address[1] is the port)."""
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keepalive else "HTTP/1.0"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            if not keepalive:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = _Server((host, port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class LineServer:
    """A TCP server on 127.0.0.1 that reads one line (at most 256 bytes)
    per connection, sends answer(line) and closes: a stand-in for the
    agent-checker as HAProxy's agent checks talk to it. on_line(line) is
    called for every line received. Connections are served one at a time."""

    def __init__(self, answer, on_line=None):
        self.answer, self.on_line = answer, on_line
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                data = b""
                try:
                    while not data.endswith(b"\n") and len(data) < 256:
                        chunk = conn.recv(256)
                        if not chunk:
                            break
                        data += chunk
                    conn.sendall(self.answer(data))
                except OSError:
                    pass
                if self.on_line:
                    self.on_line(data)

    def close(self):
        self.closed = True
        self.thread.join(timeout=5)
        self.sock.close()


class KubeFixture:
    """The Kubernetes API fixture (tests/kube) in state directory dir,
    through kube-fixture.sh: addr (the API), control (its control API)."""

    def __init__(self, dir, *args, timeout=60):
        self.dir = dir
        subprocess.run([KUBE_FIXTURE, "start", dir, *args], check=True,
                       stdout=subprocess.DEVNULL, timeout=timeout)
        self.addr = self._file("addr")
        self.control = self._file("control")

    def _file(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return f.read().strip()

    def ctl(self, op, body=None, timeout=60):
        """POST control/v1/OP; the JSON answer. Asserts HTTP 200."""
        st, out, _ = http("POST", "%s/v1/%s" % (self.control, op), body or {}, timeout=timeout)
        assert st == 200, "fixture %s: HTTP %d %s" % (op, st, out[:300])
        return json.loads(out or b"{}")

    def get(self, path, timeout=60):
        st, out, _ = http("GET", "%s/v1/%s" % (self.control, path), timeout=timeout)
        assert st == 200, "fixture GET %s: HTTP %d %s" % (path, st, out[:300])
        return json.loads(out)

    def args(self):
        """The exporter's options to reach this API with its CA and token."""
        return ["--kube-api", self.addr, "--kube-ca-file", os.path.join(self.dir, "ca.crt"),
                "--kube-token-file", os.path.join(self.dir, "token")]

    def stop(self):
        subprocess.run([KUBE_FIXTURE, "stop", self.dir], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)


# ---- command line, for the shell harnesses ----

def _main(argv):
    import argparse
    p = argparse.ArgumentParser(prog="drover_testlib.py",
                                description="drover's test library for shell harnesses")
    sub = p.add_subparsers(dest="cmd", required=True)
    fp = sub.add_parser("free-ports", help="N free TCP ports on 127.0.0.1, one line")
    fp.add_argument("n", type=int, nargs="?", default=1)
    fp.add_argument("--udp", action="store_true", help="also free for UDP")
    hc = sub.add_parser("haproxy", help="one command on a HAProxy stats or master socket")
    hc.add_argument("socket")
    hc.add_argument("command", nargs="+")
    hr = sub.add_parser("haproxy-reloads", help="the master's reload counter")
    hr.add_argument("master_socket")
    hs = sub.add_parser("haproxy-servers",
                        help='"name addr status weight last-agent-text" of the occupied '
                        "slots of BACKEND (`show stat`)")
    hs.add_argument("socket")
    hs.add_argument("backend")
    sh = sub.add_parser("serve-http", help="answer every GET with BODY until killed; prints "
                        '"listening on HOST:PORT" once bound')
    sh.add_argument("host")
    sh.add_argument("port", type=int, help="0: any free port")
    sh.add_argument("--body", default="ok\n")
    sh.add_argument("--port-file", help="write the bound port there (temp + rename)")
    nl = sub.add_parser("notify-log", help="bind a $NOTIFY_SOCKET, append every datagram "
                        "to LOG as one line")
    nl.add_argument("socket")
    nl.add_argument("log")
    nl.add_argument("--until", help="exit 0 after a datagram with this line (READY=1)")
    nl.add_argument("--timeout", type=float, help="fail if no datagram for this long (s)")
    cd = sub.add_parser("consul-dump", help="key=value lines (sorted) of every key under "
                        "PREFIX")
    cd.add_argument("addr")
    cd.add_argument("prefix")
    a = p.parse_args(argv)
    if a.cmd == "free-ports":
        print(" ".join(map(str, free_ports(a.n, a.udp))))
    elif a.cmd == "haproxy":
        sys.stdout.write(haproxy_cmd(a.socket, " ".join(a.command)))
    elif a.cmd == "haproxy-reloads":
        print(haproxy_master_reloads(a.master_socket))
    elif a.cmd == "haproxy-servers":
        for r in haproxy_stat(a.socket):
            if (r["pxname"] == a.backend and r["svname"] not in ("BACKEND", "FRONTEND")
                    and not r["addr"].startswith("0.0.0.0")):
                print(r["svname"], r["addr"], r["status"], r["weight"], r.get("last_agt") or "-")
    elif a.cmd == "serve-http":
        srv = serve_http(a.host, a.port, a.body.encode())
        port = srv.server_address[1]
        if a.port_file:
            write_atomic(a.port_file, str(port), fsync=False)
        print("listening on %s:%d" % (a.host, port), flush=True)
        threading.Event().wait()
    elif a.cmd == "notify-log":
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s, \
                open(a.log, "a", buffering=1) as out:
            s.bind(a.socket)
            s.settimeout(a.timeout)
            while True:
                msg = s.recv(4096).decode(errors="replace")
                out.write(msg.replace("\n", " ") + "\n")
                if a.until and a.until in msg.split("\n"):
                    break
    elif a.cmd == "consul-dump":
        for k, (v, _) in sorted(Consul(a.addr).dump(a.prefix, decode=True).items()):
            print(k + "=" + v)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_main(sys.argv[1:]))
    except (OSError, AssertionError) as e:
        sys.exit("drover_testlib.py: %s" % e)
