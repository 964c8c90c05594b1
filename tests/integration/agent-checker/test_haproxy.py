#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""drover-agent-checker driving a real HAProxy 2.6 through agent-check.

HAProxy runs in the foreground on loopback free ports with a stats socket;
its backend's servers use `agent-check agent-port P agent-inter 200ms
agent-send "<backend>/<server>\\n"` against the real daemon. Checks:
  - state drain + reason  -> `show stat` says DRAIN and shows the reason
  - state ready           -> back to UP
  - weight and maint      -> HAProxy's weight / MAINT follow
  - agent-checker stopped -> agent checks fail, servers are NOT marked down

usage: test_haproxy.py PATH/TO/drover-agent-checker"""

import os
import shutil
import socket
import subprocess
import sys

from agentlib import SKIP, Daemon, free_port, hold_for, run, wait_until
import drover_testlib  # on the path through agentlib

INTER_MS = 200


class HAProxy(drover_testlib.HAProxy):
    """HAProxy in the foreground with a stats socket, on a config of one
    backend be_app whose servers are agent-checked by the daemon."""

    def __init__(self, work, agent_port, servers):
        super().__init__(os.path.join(work, "haproxy.cfg"), os.path.join(work, "haproxy.log"),
                         sock=os.path.join(work, "stats.sock"))
        lines = [
            "global",
            f"    stats socket {self.sock} mode 600 level admin",
            "defaults",
            "    mode tcp",
            "    timeout connect 1s",
            "    timeout client 5s",
            "    timeout server 5s",
            "frontend fe",
            f"    bind 127.0.0.1:{free_port()}",
            "    default_backend be_app",
            "backend be_app",
        ]
        # Each server is a listening socket the kernel completes TCP health
        # checks on (never accepted: HAProxy's check only needs the connect).
        self.listeners = []
        for name in servers:
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.bind(("127.0.0.1", 0))
            ls.listen(4096)
            self.listeners.append(ls)
            lines.append(
                f"    server {name} 127.0.0.1:{ls.getsockname()[1]} weight 100"
                f" check inter {INTER_MS}ms agent-check"
                f" agent-addr 127.0.0.1 agent-port {agent_port} agent-inter {INTER_MS}ms"
                f' agent-send "be_app/{name}\\n"')
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        check = subprocess.run(["haproxy", "-c", "-f", self.cfg], capture_output=True, timeout=30)
        assert check.returncode == 0, check.stderr.decode() + check.stdout.decode()
        return super().start()

    def stat(self, server):
        """`show stat` row of be_app/server as a dict keyed by column name."""
        row = drover_testlib.haproxy_stat_row(self.sock, "be_app", server)
        if row is None:
            raise AssertionError(f"be_app/{server} not in show stat:\n{self.cmd('show stat')}")
        return row

    def stop(self):
        for ls in self.listeners:
            ls.close()
        super().stop()
        return 0


def state(**servers):
    # weight 100 in the default: a server whose entry is removed gets its
    # configured weight back (an answer without "N%" leaves HAProxy's
    # current weight alone).
    return {"version": 1, "default": {"admin": "ready", "health": "up", "weight": 100},
            "servers": servers}


def test_drain_ready_weight_maint_and_agent_down(binary, work, daemons):
    agent = Daemon(binary, work, metrics=False)
    daemons.append(agent)
    agent.write_state(state(**{"be_app/srv1": {"admin": "drain", "reason": "disk swap",
                                               "author": "alice"}}))
    agent.start()
    hap = HAProxy(work, agent.port, ["srv1", "srv2"])
    daemons.append(hap)
    hap.start()

    def status_is(server, want, desc=None):
        def check():
            row = hap.stat(server)
            # 2.6 shows "DRAIN (agent)" / "MAINT (agent)" when the agent set it
            ok = (row["status"] == want or row["status"].startswith(want + " ")) and (
                desc is None or desc in row.get("last_agt", ""))
            return ok or (False, row["status"], row.get("last_agt"), row.get("agent_status"))
        return check

    wait_until("srv1 DRAIN with the reason",
               lambda: status_is("srv1", "DRAIN", "disk swap (by alice)")() is True)
    wait_until("srv2 UP", lambda: status_is("srv2", "UP")() is True)
    state_line = hap.cmd("show servers state be_app")
    assert "srv1" in state_line

    # ready -> back to UP
    agent.write_state(state())
    wait_until("srv1 back to UP", lambda: status_is("srv1", "UP")() is True)

    # the health word: down marks the server down until the agent says up
    agent.write_state(state(**{"be_app/srv1": {"health": "down", "reason": "app broken"}}))
    wait_until("srv1 DOWN", lambda: status_is("srv1", "DOWN", "app broken")() is True)
    agent.write_state(state())
    wait_until("srv1 UP again", lambda: status_is("srv1", "UP")() is True)

    # weight 50 % of the configured 100, then maint
    agent.write_state(state(**{"be_app/srv2": {"weight": 50, "reason": "half"}}))
    wait_until("srv2 weight 50", lambda: hap.stat("srv2")["weight"] == "50")
    agent.write_state(state(**{"be_app/srv2": {"admin": "maint", "reason": "reboot"}}))
    wait_until("srv2 MAINT", lambda: hap.stat("srv2")["status"].startswith("MAINT"))
    agent.write_state(state())
    wait_until("srv2 back to UP with full weight",
               lambda: hap.stat("srv2")["status"] == "UP" and hap.stat("srv2")["weight"] == "100")

    # agent-checker gone: checks fail to connect, servers stay up
    assert agent.stop() == 0
    wait_until("HAProxy to see failing agent checks",
               lambda: hap.stat("srv1")["agent_status"].startswith("L4")
               and hap.stat("srv2")["agent_status"].startswith("L4"))
    # A negative check needs a window: watch for 10 agent intervals (well
    # past the default fall of 3) that no server is ever marked down.
    def all_up():
        for name in ("srv1", "srv2"):
            row = hap.stat(name)
            assert row["status"] == "UP", (name, row["status"], row["agent_status"])
        return True
    hold_for("srv1 and srv2 UP while the agent-checker is down", all_up, 10 * INTER_MS / 1000,
             interval=0.1)
    assert hap.stat("srv1")["agent_status"].startswith("L4")


if __name__ == "__main__":
    if not shutil.which("haproxy"):
        print("SKIP: haproxy not installed (scripts/bootstrap.sh installs it)")
        sys.exit(SKIP)
    run([test_drain_ready_weight_maint_and_agent_down], sys.argv[1])
