"""Interrupting a doit run at one exact point (tests/support/stopping_doit.py) and signalling
it there, as the interruption tests do."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import zfspool
from tests.support.host import REPO, Host


def start_run(host: Host, stop_at: str = "", target: str = "jail:pg-1") -> subprocess.Popen[str]:
    """doit run <target>, stopping itself at `stop_at` (tests/support/stopping_doit.py)."""
    host.seed_host()
    host.write_config()
    env = {**host.env(), "PYTHONPATH": str(REPO), "THINJAIL_TEST_STOP_AT": stop_at,
           "THINJAIL_TEST_STOPPED": str(stopped_file(host))}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.stopping_doit", "run", "-f", str(REPO / "dodo.py"),
         target, f"config={host.config_path}"], env=env, cwd=host.tmp, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stopped_file(host: Host) -> Path:
    return host.tmp / "stopped-at"


def is_stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "Tt"


def signal_doit(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    """Signal doit, which is running or stopped (never finished), and see that the signal
    ended it; then wait until every process it started has ended."""
    assert proc.poll() is None, f"doit ended (exit {proc.returncode}) before it was signalled"
    os.kill(proc.pid, sig)
    os.kill(proc.pid, signal.SIGCONT)
    proc.wait(timeout=60)
    assert proc.returncode == -sig, f"doit ended with {proc.returncode}, not by {sig.name}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)  # its session still has a process
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("a command started by the interrupted run did not end")


def interrupt(host: Host, stop_at: str, sig: signal.Signals, target: str = "jail:pg-1") -> str:
    """Run doit until it stops itself at stop_at, then signal it; return where it stopped."""
    proc = start_run(host, stop_at, target)
    deadline = time.monotonic() + 120
    while not (stopped_file(host).exists() and is_stopped(proc.pid)):
        assert proc.poll() is None, f"doit ended (exit {proc.returncode}) before {stop_at}"
        assert time.monotonic() < deadline, f"doit did not reach {stop_at} in 120 s"
        time.sleep(0.005)
    where = stopped_file(host).read_text()
    signal_doit(proc, sig)
    return where


def tree(root: Path) -> dict[str, str]:
    """Every entry below root: its type and link target or content digest."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                entries[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                entries[rel] = "dir"
            else:
                entries[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return entries


def localizer(host: Host) -> Callable[[str], str]:
    """Takes this host's own names and paths out of a text, so hosts compare."""
    root_mp = str(host.mountpoint())

    def local(text: str) -> str:
        return text.replace(root_mp, "<mnt>").replace(host.root, "<root>").replace(
            str(host.tmp), "<tmp>")

    return local


def datasets(host: Host, stamps: str) -> list[str]:
    """Each dataset's type, origin and local `stamps` (thinjail:<key>,...), localized."""
    local = localizer(host)
    listing = zfspool.run("zfs", "get", "-H", "-p", "-r", "-o", "name,property,value,source",
                          f"type,origin,{stamps}", host.root)
    return sorted(local(line) for line in listing.splitlines()
                  if "inherited" not in line and not line.endswith("\t-\t-"))


def command_points(steps: list[str], interrupt: tuple[str, ...] | None = None) -> list[Any]:
    """Test cases for a run whose host-changing commands belong to `steps`, in order:
    SIGKILL after every command; SIGINT (Ctrl-C) after the first command of each step (of
    the steps in `interrupt`, when given)."""
    cases = []
    for k, step in enumerate(steps, start=1):
        name = step.replace(" ", "-")
        cases.append(pytest.param(f"command:{k}", signal.SIGKILL, id=f"{k:02d}-{name}-kill"))
        if step not in steps[:k - 1] and (interrupt is None or step in interrupt):
            cases.append(pytest.param(f"command:{k}", signal.SIGINT, id=f"{k:02d}-{name}-int"))
    return cases
