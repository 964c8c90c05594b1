#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks every systemd unit in deploy/systemd/ against the programs it runs.

usage: check_units.py UNIT_DIR NAME=PATH...   (NAME = installed program name,
PATH = the built binary of the CMake target of that name)

For each unit:
- every Exec* command that runs a drover program names one of the given
  targets, at the path CMake installs it to (/usr/local/sbin or
  /usr/local/bin, default prefix), so a renamed program breaks the test;
- its subcommand words and every --option appear in that program's --help
  (and the subcommand's --help): units cannot drift from the CLI;
- `systemd-analyze verify` accepts it, with the drover programs' install
  paths pointed at the built binaries (a copy of the unit in a temp dir;
  nothing else is changed), so the command lines are checked as systemd
  parses them. Templates (name@.service) are verified as they are.
Exit 0 = all good, 1 = a finding (each printed), 77 = no systemd-analyze.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

EXEC_KEYS = ("ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload",
             "ExecStop", "ExecStopPost", "ExecCondition")
INSTALL_DIRS = ("/usr/local/sbin/", "/usr/local/bin/")


def exec_lines(path):
    """(key, command words) of every Exec* line, continuation lines joined."""
    text = open(path, encoding="utf-8").read().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*(%s)\s*=\s*(.*)$" % "|".join(EXEC_KEYS), line)
        if m and m.group(2).strip():
            words = shlex.split(m.group(2))
            # systemd's prefixes: - @ : + ! !!
            words[0] = words[0].lstrip("-@:+!")
            out.append((m.group(1), words))
    return out


def help_text(binary, sub):
    """--help of the program plus that of each subcommand prefix."""
    text = ""
    for i in range(len(sub) + 1):
        r = subprocess.run([binary] + sub[:i] + ["--help"], capture_output=True,
                           text=True, timeout=10)
        text += r.stdout + r.stderr
    return text


def check_command(unit, key, words, targets, problems):
    prog = words[0]
    name = os.path.basename(prog)
    if not name.startswith("drover"):
        return
    where = "%s %s" % (unit, key)
    if name not in targets:
        problems.append("%s: runs %s, which is no CMake target (%s)"
                        % (where, name, ", ".join(sorted(targets))))
        return
    if not prog.startswith(INSTALL_DIRS):
        problems.append("%s: %s is not at an install path (%s)"
                        % (where, prog, " or ".join(INSTALL_DIRS)))
    args = words[1:]
    sub = []
    for w in args:
        if w.startswith("-") or w.startswith("$") or "%" in w:
            break
        sub.append(w)
    text = help_text(targets[name], sub)
    help_words = set(re.findall(r"[A-Za-z][A-Za-z0-9_-]*", text))
    for w in sub:
        if w not in help_words:
            problems.append("%s: subcommand '%s' not in `%s %s --help`"
                            % (where, w, name, " ".join(sub)))
    help_opts = set(re.findall(r"--[a-z0-9][a-z0-9-]*", text))
    for w in args:
        if w.startswith("$"):
            continue  # operator's extra options from the EnvironmentFile
        opt = w.split("=", 1)[0]
        if opt.startswith("--") and opt not in help_opts:
            problems.append("%s: option %s not in `%s %s --help`"
                            % (where, opt, name, " ".join(sub)))


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    unit_dir = sys.argv[1]
    targets = dict(a.split("=", 1) for a in sys.argv[2:])
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        print("SKIP: systemd-analyze not installed")
        return 77
    units = sorted(f for f in os.listdir(unit_dir)
                   if f.endswith((".service", ".socket", ".timer")))
    if not units:
        print("no units in %s" % unit_dir)
        return 1
    problems = []
    commands = 0
    with tempfile.TemporaryDirectory(prefix="drover-units-") as tmp:
        for u in units:
            src = os.path.join(unit_dir, u)
            for key, words in exec_lines(src):
                commands += 1
                check_command(u, key, words, targets, problems)
            text = open(src, encoding="utf-8").read()
            for name, path in targets.items():
                for d in INSTALL_DIRS:
                    text = text.replace(d + name, os.path.abspath(path))
            with open(os.path.join(tmp, u), "w", encoding="utf-8") as f:
                f.write(text)
        for u in units:
            r = subprocess.run([analyze, "verify", "--man=no", os.path.join(tmp, u)],
                               capture_output=True, text=True, timeout=60, cwd=tmp)
            out = (r.stdout + r.stderr).strip()
            # verify has no "strict" switch: any message about our unit is a
            # finding (unknown keys, bad values, missing binaries)
            if r.returncode != 0 or out:
                problems.append("%s: systemd-analyze verify (rc %d):\n  %s"
                                % (u, r.returncode, out.replace("\n", "\n  ")))
    for p in problems:
        print("FAIL " + p)
    print("%d units, %d commands, %d problems" % (len(units), commands, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
