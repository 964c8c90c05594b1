# SPDX-License-Identifier: Apache-2.0
"""Every program that talks to Consul reaches a real Consul over HTTPS
through the one Consul option block: the dev agent's certificate is signed
by a CA made for the test and valid only for a DNS name (not 127.0.0.1),
so a program gets through only with --consul-ca-file and
--consul-tls-server-name (or Consul's own CONSUL_CACERT and
CONSUL_TLS_SERVER_NAME), and is refused without the CA.

usage: test_consul_tls_programs.py TEMPLATE_DIR NAME=PATH...
(drover-exporter, drover-watcher, droverctl); DROVER_CONSUL_STATE names
the state directory of a consul-dev.sh --tls agent."""

import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
from drover_testlib import (Checks, ConsulDev, free_port, metric_sum,  # noqa: E402
                            program_env, run_program as run, scrape, stop_process, wait_until)

DEV = ConsulDev(os.environ.get("DROVER_CONSUL_STATE", ""))
HTTPS, CA, NAME = DEV.https_addr, DEV.ca_file, DEV.tls_server_name
FLAGS = ["--consul-addr", HTTPS, "--consul-ca-file", CA, "--consul-tls-server-name", NAME]
NO_CA = ["--consul-addr", HTTPS, "--consul-tls-server-name", NAME]
CONSUL_ENV = {"CONSUL_HTTP_ADDR": HTTPS, "CONSUL_CACERT": CA, "CONSUL_TLS_SERVER_NAME": NAME}
TLS_REFUSED = re.compile(r"SSL|certificate|TLS", re.I)
CHECKS = Checks()
check = CHECKS.check


def metric(port, name):
    """name's value (summed over its labels) on port's /metrics; None if
    the daemon does not answer or has no such metric."""
    try:
        samples = scrape(port, timeout=2)
    except OSError:
        return None
    if not any(k == name or k.startswith(name + "{") for k in samples):
        return None
    return metric_sum(samples, name)


class Daemon:
    """A daemon in the background with its log in a file; stopped with
    SIGTERM and waited for."""

    def __init__(self, argv, log, extra_env=None):
        self.log = log
        self.f = open(log, "w")
        self.p = subprocess.Popen(argv, stdout=self.f, stderr=subprocess.STDOUT,
                                  env=program_env(extra_env))

    def text(self):
        with open(self.log) as f:
            return f.read()

    def stop(self):
        stop_process(self.p, timeout=20)
        self.f.close()


def daemon_case(label, argv, port, log, ok_metric, ok_min, err_metric, extra_env=None,
                expect_ok=True):
    """Start argv. expect_ok: wait until ok_metric >= ok_min (Consul
    answered over TLS) and check err_metric stayed 0. Else wait until
    err_metric counts the refused handshake, check the log names it and,
    when ok_min is 1, that ok_metric never moved."""
    d = Daemon(argv, log, extra_env)
    try:
        if expect_ok:
            wait_until(f"{label}: {ok_metric} >= {ok_min} (Consul reached over TLS)",
                       lambda: (metric(port, ok_metric) or 0) >= ok_min, timeout=20)
            check(metric(port, err_metric) == 0, f"{label}: {err_metric} == 0")
        else:
            wait_until(f"{label}: {err_metric} >= 1 (TLS refused)",
                       lambda: (metric(port, err_metric) or 0) >= 1, timeout=20)
            if ok_min == 1:
                check((metric(port, ok_metric) or 0) == 0, f"{label}: {ok_metric} stays 0")
            check(TLS_REFUSED.search(d.text()) is not None, f"{label}: log names the TLS failure")
        check(d.p.poll() is None, f"{label}: still running")
        check(metric(port, "drover_build_info") == 1, f"{label}: drover_build_info in /metrics")
    except AssertionError as e:
        check(False, f"{label}: {e}\n{d.text()[-2000:]}")
    finally:
        d.stop()


def test_droverctl(ctl):
    for label, argv, env in (("flags", FLAGS, None), ("CONSUL_* environment", [], CONSUL_ENV)):
        rc, out, err = run([ctl] + argv + ["status"], env)
        check(rc == 0 and "no maintenance entries" in out,
              f"droverctl status over TLS ({label}): rc {rc} {out.strip()} {err.strip()}")
    rc, out, err = run([ctl] + NO_CA + ["status"])
    check(rc == 1 and TLS_REFUSED.search(out + err) is not None,
          f"droverctl status without the CA refused: rc {rc} {err.strip()}")


def test_watcher(watcher, templates, tmp):
    base = [watcher, "--haproxy-cluster", "tls-it", "--template-dir", templates,
            "--config-dir", f"{tmp}/cfg", "--snapshot-file", f"{tmp}/snap.pb",
            "--agent-state-file", f"{tmp}/agent.json",
            "--haproxy-state-file", f"{tmp}/{{service}}.state"]
    rc, out, err = run(base + FLAGS + ["render", "--out", f"{tmp}/out"])
    check(rc == 0 and os.path.exists(f"{tmp}/out/agent-state.json"),
          f"watcher render over TLS: rc {rc} {err.strip()[-300:]}")
    rc, out, err = run(base + NO_CA + ["render", "--out", f"{tmp}/out2"])
    check(rc == 1 and TLS_REFUSED.search(err) is not None,
          f"watcher render without the CA refused: rc {rc} {err.strip()[-300:]}")

    for label, argv, env, ok in (("flags", FLAGS, None, True),
                                 ("CONSUL_* environment", [], CONSUL_ENV, True),
                                 ("no CA", NO_CA, None, False)):
        port = free_port()
        os.makedirs(f"{tmp}/{port}", exist_ok=True)
        run_argv = base[:] + argv + ["--metrics-addr", f"127.0.0.1:{port}",
                                     "--snapshot-file", f"{tmp}/{port}/snap.pb", "run"]
        daemon_case(f"watcher run ({label})", run_argv, port, f"{tmp}/watcher-{port}.log",
                    "drover_watcher_snapshots_total", 1, "drover_watcher_consul_errors_total",
                    env, ok)

    for label, argv, ok in (("flags", FLAGS, True), ("no CA", NO_CA, False)):
        port = free_port()
        pins = f"{tmp}/pins-{port}"
        os.makedirs(pins)
        dargv = [watcher, "director"] + argv + [
            "--director-cluster", "tls-it", "--dev", "nodev0", "--pin-root", pins,
            "--director-snapshot-file", f"{pins}/director.pb",
            "--metrics-addr", f"127.0.0.1:{port}", "run"]
        # the feed's second request is the blocking query after a first answer
        daemon_case(f"watcher director run ({label})", dargv, port, f"{tmp}/director-{port}.log",
                    "drover_watcher_director_consul_requests_total", 2,
                    "drover_watcher_director_consul_errors_total", None, ok)

    for label, argv, ok in (("flags", FLAGS, True), ("no CA", NO_CA, False)):
        port = free_port()
        d = f"{tmp}/anycast-{port}"
        os.makedirs(f"{d}/cfg")
        # no HAProxy service and no BIRD here: only its Consul side is tested
        aargv = [watcher, "anycast"] + argv + [
            "--config-dir", f"{d}/cfg", "--bird-socket", f"{d}/bird.ctl",
            "--bird-include", f"{d}/vips.conf", "--bird-bin", "true",
            "--frontdoor-state", f"{d}/state.json", "--host-name", f"tls-it-{port}",
            "--metrics-addr", f"127.0.0.1:{port}", "run"]
        # its drain-record watch: a first read, then the blocking query
        daemon_case(f"watcher anycast run ({label})", aargv, port, f"{d}/anycast.log",
                    "drover_watcher_anycast_consul_requests_total", 2,
                    "drover_watcher_anycast_consul_errors_total", None, ok)


def test_exporter(exporter, tmp):
    for label, argv, env, ok in (("flags", FLAGS, None, True),
                                 ("CONSUL_* environment", [], CONSUL_ENV, True),
                                 ("no CA", NO_CA, None, False)):
        port = free_port()
        cluster = f"tls-{port}"
        eargv = [exporter] + argv + ["--kube-cluster", cluster, "--kube-api",
                                     "http://127.0.0.1:1", "--metrics-addr", f"127.0.0.1:{port}"]
        daemon_case(f"exporter ({label})", eargv, port, f"{tmp}/exporter-{port}.log",
                    "drover_exporter_leader", 1, "drover_exporter_consul_errors_total", env, ok)
        leader_key = f"drover/v1/kube/{cluster}/leader" in DEV.client().keys("drover/v1/kube/")
        check(leader_key == ok,
              f"exporter ({label}): leader key {'written' if ok else 'not written'} over TLS")


def main():
    templates = sys.argv[1]
    progs = dict(a.split("=", 1) for a in sys.argv[2:])
    with tempfile.TemporaryDirectory(prefix="drover-tls-it.") as tmp:
        if "droverctl" in progs:
            test_droverctl(progs["droverctl"])
        if "drover-watcher" in progs:
            test_watcher(progs["drover-watcher"], templates, tmp)
        if "drover-exporter" in progs:
            test_exporter(progs["drover-exporter"], tmp)
    sys.exit(CHECKS.finish())


if __name__ == "__main__":
    main()
