"""The Ansible role (deploy/ansible) drives thinjail on two jail hosts of this machine: local
connection, each host with its own config, parent dataset, host files and fake FreeBSD
commands, run by ansible-playbook from PyPI's ansible-core with the collection's playbook
thinjail.jails.site (deploy/ansible, linked into a collections path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tasks.config import parse_config
from tests.support.collection import COLLECTION, collections_path
from tests.support.host import RELEASE, REPO, Host

PLAYBOOK = "thinjail.jails.site"
EXAMPLE_INVENTORY = COLLECTION / "inventory.example.yml"
ROLE = "thinjail.jails.thinjail"
RUN_TASK = f"{ROLE} : Run thinjail"
# What pkg installs for the role's origins: the flavour of the ports tree's default Python.
HOST_PACKAGES = ["py312-Jinja2", "py312-doit", "py312-pyyaml", "py312-tqdm"]


@dataclass
class Play:
    returncode: int
    output: str
    results: list[dict[str, Any]]  # one per host and task, from tests/support/ansible/record.py

    def doit(self) -> dict[str, dict[str, Any]]:
        """Each host's result of the task that runs doit."""
        return {r["host"]: r for r in self.results if r["task"] == RUN_TASK}

    def changed(self) -> dict[str, list[str]]:
        """Each host's tasks that reported changed."""
        found: dict[str, list[str]] = {}
        for r in self.results:
            found.setdefault(r["host"], [])
            if r["status"] == "changed":
                found[r["host"]].append(r["task"])
        return found


class Fleet:
    """An inventory of stand-in jail hosts and the ansible-playbook that drives them."""

    def __init__(self, work: Path, hosts: dict[str, Host]) -> None:
        self.work, self.hosts = work, hosts
        work.mkdir(parents=True, exist_ok=True)

    def inventory(self) -> dict[str, Any]:
        hosts = {}
        for name, host in self.hosts.items():
            host.seed_host()
            hosts[name] = {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "thinjail_dir": str(host.tmp / "thinjail"),
                "thinjail_config_path": str(host.config_path),
                "thinjail_config": host.config(),
                # The fake FreeBSD commands (pkg among them), the host they stand for, and
                # the `doit` command (in the test's environment, as the port installs it).
                "thinjail_environment": {k: v for k, v in host.env().items()
                                         if k == "PATH" or k.startswith("THINJAIL_FAKE_")},
            }
        return {"jailhosts": {"hosts": hosts}}

    def play(self, *args: str) -> Play:
        inventory = self.work / "inventory.yml"
        inventory.write_text(yaml.safe_dump(self.inventory(), sort_keys=False))
        record = self.work / "record.jsonl"
        record.unlink(missing_ok=True)
        env = {**os.environ, "ANSIBLE_HOME": str(self.work / "home"),
               "ANSIBLE_LOCAL_TEMP": str(self.work / "tmp"),
               "ANSIBLE_REMOTE_TEMP": str(self.work / "remote-tmp"),
               "ANSIBLE_CALLBACK_PLUGINS": str(REPO / "tests" / "support" / "ansible"),
               "ANSIBLE_CALLBACKS_ENABLED": "record", "THINJAIL_ANSIBLE_RECORD": str(record),
               "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORKS": "5",
               "ANSIBLE_COLLECTIONS_PATH": str(collections_path(self.work))}
        proc = subprocess.run([sys.executable, "-m", "ansible", "playbook", "-i", str(inventory),
                               PLAYBOOK, *args], capture_output=True, text=True, env=env,
                              cwd=self.work, stdin=subprocess.DEVNULL, timeout=900)
        results = [json.loads(line) for line in record.read_text().splitlines()] \
            if record.exists() else []
        return Play(proc.returncode, proc.stdout + proc.stderr, results)


def doit_span(host: Host, since: int) -> tuple[float, float]:
    """When the host's doit ran its first and last command, from thinjail's command log."""
    lines = (host.state_dir / "commands.log").read_text().splitlines()[since:]
    times = [json.loads(line)["time"] for line in lines]
    return min(times), max(times)


def log_length(host: Host) -> int:
    log = host.state_dir / "commands.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_fleet_runs_each_host_and_reports_like_doit(host: Host, other_host: Host,
                                                      tmp_path: Path) -> None:
    other_host.jails = {"web-1": {"id": 21}}
    fleet = Fleet(tmp_path / "ansible", {"alpha": host, "beta": other_host})

    # --check on new hosts: everything would change, nothing is made.
    preview = fleet.play("--check")
    assert preview.returncode == 0, preview.output
    assert {h: r["status"] for h, r in preview.doit().items()} == {"alpha": "changed",
                                                                    "beta": "changed"}
    for h in (host, other_host):
        assert not h.config_path.exists() and not (h.tmp / "thinjail").exists()
        assert not h.exists("containers") and not (h.fake_state / "packages").exists()

    first = fleet.play()
    assert first.returncode == 0, first.output
    assert {h: r["status"] for h, r in first.doit().items()} == {"alpha": "changed",
                                                                  "beta": "changed"}
    assert "start:pg-1" in first.doit()["alpha"]["ran"]
    assert host.running() == {"pg-1"} and other_host.running() == {"web-1"}
    assert host.exists("containers/pg-1") and not host.exists("containers/web-1")
    assert other_host.exists("containers/web-1") and not other_host.exists("containers/pg-1")
    for h in (host, other_host):
        assert (h.fake_state / "packages" / "host").read_text().split() == HOST_PACKAGES
        assert yaml.safe_load(h.config_path.read_text()) == h.config()
    # Both hosts built at the same time (Ansible forks), each with its own doit.
    (a_start, a_end), (b_start, b_end) = doit_span(host, 0), doit_span(other_host, 0)
    assert a_start < b_end and b_start < a_end

    seen = {"alpha": log_length(host), "beta": log_length(other_host)}
    second = fleet.play()
    assert second.returncode == 0, second.output
    assert second.changed() == {"alpha": [], "beta": []}
    assert {h: (r["status"], r["ran"]) for h, r in second.doit().items()} == {
        "alpha": ("ok", []), "beta": ("ok", [])}
    for name, h in (("alpha", host), ("beta", other_host)):
        new = [json.loads(line) for line in
               (h.state_dir / "commands.log").read_text().splitlines()[seen[name]:]]
        assert [c["argv"] for c in new if c["changes"]] == []

    # A new jail in one host's inventory: --check shows it and changes nothing...
    host.jails["dev"] = {"id": 112}
    check = fleet.play("--check")
    assert check.returncode == 0, check.output
    assert check.doit()["alpha"]["status"] == "changed"
    assert {"clone:dev", "start:dev"} <= set(check.doit()["alpha"]["ran"])
    assert check.doit()["beta"]["status"] == "ok"
    assert not host.exists("containers/dev") and "dev" not in host.config_path.read_text()
    # ... and the real run changes that host only.
    added = fleet.play()
    assert added.returncode == 0, added.output
    assert set(added.doit()["alpha"]["ran"]) == {"clone:dev", "fstab:dev", "conf:dev",
                                                "rc:dev", "start:dev"}
    assert added.changed() == {"alpha": [f"{ROLE} : Render config.yaml", RUN_TASK],
                               "beta": []}
    assert host.running() == {"pg-1", "dev"}

    # A jail taken out of the inventory is kept, and reported as a warning, not a change.
    del host.jails["dev"]
    orphaned = fleet.play()
    assert orphaned.returncode == 0, orphaned.output
    alpha = orphaned.doit()["alpha"]
    assert (alpha["status"], alpha["ran"]) == ("ok", [])
    assert any(w.startswith("orphan: jail dev ") for w in alpha["warnings"]), alpha
    assert host.exists("containers/dev") and host.running() == {"pg-1", "dev"}

    # A broken config fails that host only, with thinjail's message, before any command.
    other_host.jails = {"web-1": {"id": 21}, "web-2": {"id": 21}}
    seen = {"alpha": log_length(host), "beta": log_length(other_host)}
    broken = fleet.play()
    assert broken.returncode != 0
    beta = broken.doit()["beta"]
    assert beta["status"] == "failed"
    assert "jails.web-2.id: 21 is already used by jail web-1" in beta["msg"]
    assert log_length(other_host) == seen["beta"]
    assert broken.doit()["alpha"]["status"] == "ok"
    assert other_host.running() == {"web-1"}

    # A failing step fails that host with the doit task and its one-line message.
    other_host.jails = {"web-1": {"id": 21}, "web-2": {"id": 22, "release": "14.4-RELEASE"}}
    other_host.overrides["mirror"] = f"{other_host.mirror_url}/bad"
    failing = fleet.play()
    beta = failing.doit()["beta"]
    assert beta["status"] == "failed", failing.output
    assert beta["msg"].startswith("fetch:14.4-RELEASE: fetch: "), beta["msg"]
    assert "HTTP 404" in beta["msg"]
    assert failing.doit()["alpha"]["status"] == "ok"
    assert other_host.running() == {"web-1"}


def test_example_inventory_gives_each_host_a_valid_config(tmp_path: Path) -> None:
    """The README's inventory and playbook: Ansible reads them, thinjail accepts the configs."""
    listing = subprocess.run(
        [sys.executable, "-m", "ansible", "inventory", "-i", str(EXAMPLE_INVENTORY), "--list"],
        capture_output=True, text=True, check=True, env={**os.environ,
                                                         "ANSIBLE_HOME": str(tmp_path)})
    hostvars = json.loads(listing.stdout)["_meta"]["hostvars"]
    assert set(hostvars) == {"jh1.example.org", "jh2.example.org"}
    roots = set()
    for name, values in hostvars.items():
        config = parse_config(values["thinjail_config"], Path(f"{name}.yaml"))
        assert config.jails and config.release == RELEASE
        roots.add(config.zfs_root)
    assert len(roots) == 2
    syntax = subprocess.run(
        [sys.executable, "-m", "ansible", "playbook", "--syntax-check", "-i",
         str(EXAMPLE_INVENTORY), PLAYBOOK], capture_output=True, text=True,
        env={**os.environ, "ANSIBLE_HOME": str(tmp_path),
             "ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path))})
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr


def test_a_host_without_a_config_stops_on_the_controller(host: Host, tmp_path: Path) -> None:
    """The role's argument spec: thinjail_config is required and a mapping, checked before
    the role's first task; an empty one fails the first task, an assert on the controller.
    Nothing runs on any host."""
    fleet = Fleet(tmp_path / "ansible", {"alpha": host})
    inventory = fleet.inventory()
    del inventory["jailhosts"]["hosts"]["alpha"]["thinjail_config"]
    (fleet.work / "inventory.yml").write_text(yaml.safe_dump(inventory))
    fleet.inventory = lambda: inventory  # type: ignore[method-assign]
    play = fleet.play()
    assert play.returncode != 0
    failed = [r for r in play.results if r["status"] == "failed"]
    assert [r["task"] for r in failed] == [
        f"{ROLE} : Validating arguments against arg spec 'main' - Put thinjail on a FreeBSD "
        "jail host and build and start its jails"]
    assert "missing required arguments: thinjail_config" in failed[0]["msg"]
    # An empty one stops there too, at the role's first task, which runs on the controller.
    inventory["jailhosts"]["hosts"]["alpha"]["thinjail_config"] = {}
    empty = fleet.play()
    assert empty.returncode != 0
    failed = [r for r in empty.results if r["status"] == "failed"]
    assert [r["task"] for r in failed] == [
        f"{ROLE} : Check that the host's config has what every config needs"]
    assert "needs at least zfs, network and jails" in failed[0]["msg"]
    assert not (host.fake_state / "calls.log").exists() or not [
        line for line in (host.fake_state / "calls.log").read_text().splitlines()
        if '"pkg"' in line]
    assert not (host.tmp / "thinjail").exists() and not host.config_path.exists()
