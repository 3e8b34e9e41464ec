"""Concurrent runs, and failures of ZFS and commands: one clear message naming the step and
the command, the run failing, nothing corrupted."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.support import zfspool
from tests.support.host import RELEASE as R
from tests.support.host import REPO, Host
from tests.support.mirror import Mirror


def test_a_second_run_on_the_same_config_is_refused(host: Host, mirror: Mirror) -> None:
    mirror.faults[f"/amd64/amd64/{R}/base.txz"] = ("stall", 4)
    host.seed_host()
    host.write_config()
    first = subprocess.Popen(
        [sys.executable, "-m", "doit", "run", "-f", str(REPO / "dodo.py"), "jail:pg-1",
         f"config={host.config_path}"], env=host.env(), cwd=host.tmp,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lock = host.state_dir / "run.lock"
    deadline = time.monotonic() + 20
    while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = host.doit("run", "jail:pg-1", write=False)
    assert second.returncode != 0
    assert "another thinjail run on this config is in progress (pid " in second.output
    assert first.poll() is None  # refused at once, while the first run still works
    output, _ = first.communicate(timeout=120)
    assert first.returncode == 0, output
    # Reporting commands do not need the lock, and the state is intact.
    assert host.doit("run", "jail:pg-1").ran() == set()
    assert host.running() == {"pg-1"}


@pytest.mark.builds_templates
def test_out_of_space_names_the_step_and_command(host: Host) -> None:
    assert host.doit("run", "host:datasets").returncode == 0
    zfspool.run("zfs", "set", "quota=200K", host.dataset("templates"))
    run = host.doit("run", "jail:pg-1")
    assert run.returncode != 0
    assert "extract: `" in run.output and "failed with exit code 1" in run.output
    assert run.results[f"extract:{R}"] == "fail"
    base = f"templates/{R}-base"
    assert not host.exists(base) or host.get(base, "thinjail:extract") == "-"  # not complete
    zfspool.run("zfs", "set", "quota=none", host.dataset("templates"))
    fixed = host.doit("run", "jail:pg-1")
    assert fixed.returncode == 0, fixed.output
    assert host.running() == {"pg-1"}


def test_a_failing_freebsd_command_names_the_step(host: Host) -> None:
    assert host.doit("run", "jail:pg-1").returncode == 0
    host.jails["dev"] = {"id": 112}
    assert host.doit("run", "clone:dev").returncode == 0
    # dev's own /etc/rc is gone, so jail(8)'s exec.start fails inside the new jail.
    (host.mountpoint("containers/dev") / "etc/rc").unlink()
    run = host.doit("run", "jail:dev")
    assert run.returncode != 0 and run.results["start:dev"] == "fail"
    assert "start: `jail -f " in run.output and "-c dev` failed with exit code 1: " \
        "jail: dev: /bin/sh /etc/rc: failed (the epair112 it left was removed)" in run.output
    assert host.running() == {"pg-1"}


def test_an_epair_that_is_not_the_jails_stops_its_start(host: Host) -> None:
    assert host.doit("run", "jail:pg-1").returncode == 0
    # An epair of that name belongs to something else: dev cannot use it, nor take it.
    interfaces = host.interfaces()
    interfaces["epair112a"] = dict(interfaces["igc0"], descr="leaked")
    host.set_interfaces(interfaces)
    host.jails["dev"] = {"id": 112}
    run = host.doit("run", "jail:dev")
    assert run.returncode != 0
    assert "start: epair112a exists on the host and is not dev's (its description is " \
        "'leaked'" in run.output
    assert "`ifconfig epair112a destroy`), or give dev another id" in run.output
    assert not any(c["tool"] == "jail" for c in run.calls)
    assert "epair112a" in host.interfaces() and host.running() == {"pg-1"}


def test_a_busy_dataset_fails_with_the_command(host: Host) -> None:
    host.jails["dev"] = {"id": 112}
    assert host.doit("run").returncode == 0
    clone = host.mountpoint("containers/dev")
    holder = subprocess.Popen(["sleep", "60"], cwd=clone)  # keeps the dataset busy
    try:
        run = host.doit("run", "destroy:dev")
    finally:
        holder.kill()
        holder.wait()
    assert run.returncode != 0
    assert "destroy: `zfs umount " in run.output and "busy" in run.output
    assert host.exists("containers/dev")  # the data is where it was
    os.sync()
    retry = host.doit("run", "destroy:dev")
    assert retry.returncode == 0, retry.output
    assert not host.exists("containers/dev")


def test_a_missing_command_names_the_step(host: Host) -> None:
    host.fakes = False
    run = host.doit("run", "host:rc")
    assert run.returncode != 0 and run.results["host:rc"] == "fail"
    assert "host: needs `sysrc`, a FreeBSD command that this host does not have: run this " \
        "step on the FreeBSD jail host" in run.output
