"""A fleet of stand-in jail hosts on this machine and the ansible-playbook that drives them:
the collection's playbooks from PyPI's ansible (ansible-core and community.general), each host
with its own config, parent dataset, host files and fake FreeBSD commands. Hosts are reached
with the local connection, as root, unless the test gives them other connection settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.collection import collections_path
from tests.support.host import REPO, Host

PLAYBOOK = "thinjail.jails.site"
ROLE = "thinjail.jails.thinjail"
RUN_TASK = f"{ROLE} : Run thinjail"
RENDER_TASK = f"{ROLE} : Render config.yaml, checked by this version's validator before it " \
              "replaces the old"
BOOTSTRAP_TASK = f"{ROLE} : Give a fresh host Python, which every module after this needs"
INSTALL_TASK = f"{ROLE} : Install thinjail's dependencies that are missing, by origin"


@dataclass
class Play:
    returncode: int
    output: str
    results: list[dict[str, Any]]  # one per host and task, from tests/support/ansible/record.py

    def doit(self) -> dict[str, dict[str, Any]]:
        """Each host's result of the task that runs doit."""
        return self.of(RUN_TASK)

    def of(self, task: str) -> dict[str, dict[str, Any]]:
        """Each host's result of one task."""
        return {r["host"]: r for r in self.results if r["task"] == task}

    def changed(self) -> dict[str, list[str]]:
        """Each host's tasks that reported changed."""
        found: dict[str, list[str]] = {}
        for r in self.results:
            found.setdefault(r["host"], [])
            if r["status"] == "changed":
                found[r["host"]].append(r["task"])
        return found

    def hosts(self) -> set[str]:
        """The hosts any task ran on."""
        return {r["host"] for r in self.results}


@dataclass
class Fleet:
    """An inventory of stand-in jail hosts and the ansible-playbook that drives them."""

    work: Path
    hosts: dict[str, Host]
    # Play settings given as extra vars (-e): these hosts are reached as root already.
    extra: dict[str, Any] = field(default_factory=lambda: {"thinjail_become": False})
    # Connection settings instead of the local connection, and settings per host name.
    connection: dict[str, Any] = field(default_factory=dict)
    per_host: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_vars: dict[str, Any] = field(default_factory=dict)
    source: Path = REPO  # the thinjail checkout the controller packs

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)

    def host_vars(self, name: str, host: Host) -> dict[str, Any]:
        host.seed_host()
        return {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            **self.connection,
            "thinjail_python": sys.executable,
            "thinjail_dir": str(host.tmp / "thinjail"),
            "thinjail_config_path": str(host.config_path),
            "thinjail_config": host.config(),
            "thinjail_environment": fake_environment(host),
            **self.per_host.get(name, {}),
        }

    def inventory(self) -> dict[str, Any]:
        hosts = {name: self.host_vars(name, host) for name, host in self.hosts.items()}
        return {"jailhosts": {"hosts": hosts, "vars": {
            "thinjail_pack_dir": str(self.work / "packed"), "thinjail_pkg_delay": 1,
            "thinjail_source": str(self.source), **self.group_vars}}}

    def env(self) -> dict[str, str]:
        # (Over SSH the hosts' temporary directory is their user's default.)
        remote = {} if self.connection else {"ANSIBLE_REMOTE_TEMP": str(self.work / "remote-tmp")}
        return {**os.environ, **remote, "ANSIBLE_HOME": str(self.work / "home"),
                "ANSIBLE_LOCAL_TEMP": str(self.work / "tmp"),
                "ANSIBLE_CALLBACK_PLUGINS": str(REPO / "tests" / "support" / "ansible"),
                "ANSIBLE_CALLBACKS_ENABLED": "record",
                "THINJAIL_ANSIBLE_RECORD": str(self.work / "record.jsonl"),
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORKS": "5", "ANSIBLE_HOST_KEY_CHECKING": "0",
                "ANSIBLE_COLLECTIONS_PATH": str(collections_path(self.work)),
                "TMPDIR": str(self.work / "controller-tmp")}

    def play(self, *args: str, playbook: str = PLAYBOOK, env: dict[str, str] | None = None,
             extra: dict[str, Any] | None = None, user: str | None = None) -> Play:
        """ansible-playbook with this inventory; `user` runs it as that user instead."""
        inventory = self.work / "inventory.yml"
        inventory.write_text(yaml.safe_dump(self.inventory(), sort_keys=False))
        record = self.work / "record.jsonl"
        record.unlink(missing_ok=True)
        (self.work / "controller-tmp").mkdir(exist_ok=True)
        argv = [sys.executable, "-m", "ansible", "playbook", "-i", str(inventory),
                "-e", json.dumps({**self.extra, **(extra or {})}), playbook, *args]
        if user is not None:
            subprocess.run(["chown", "-R", user, str(self.work)], check=True)
            home = Path(os.path.expanduser(f"~{user}"))
            argv = ["runuser", "-u", user, "--", "env",
                    *[f"{k}={v}" for k, v in {**self.env(), **(env or {}), "HOME": str(home),
                                              "USER": user}.items()], *argv]
        proc = subprocess.run(argv, capture_output=True, text=True,
                              env={**self.env(), **(env or {})}, cwd=self.work,
                              stdin=subprocess.DEVNULL, timeout=900)
        results = [json.loads(line) for line in record.read_text().splitlines()] \
            if record.exists() else []
        return Play(proc.returncode, proc.stdout + proc.stderr, results)


def calls(host: Host, tool: str, since: int = 0) -> list[list[str]]:
    """The argv of each call of a fake FreeBSD command on the host, from the `since`th call
    of any command on."""
    log = host.fake_state / "calls.log"
    lines = log.read_text().splitlines()[since:] if log.exists() else []
    return [entry["argv"] for entry in map(json.loads, lines) if entry["tool"] == tool]


def call_count(host: Host) -> int:
    log = host.fake_state / "calls.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def fake_environment(host: Host) -> dict[str, str]:
    """The fake FreeBSD commands (pkg among them) and the host they stand for."""
    return {k: v for k, v in host.env().items() if k == "PATH" or k.startswith("THINJAIL_FAKE_")}


def doit_span(host: Host, since: int = 0) -> tuple[float, float]:
    """When the host's doit ran its first and last command, from thinjail's command log."""
    lines = (host.state_dir / "commands.log").read_text().splitlines()[since:]
    times = [json.loads(line)["time"] for line in lines]
    return min(times), max(times)


def log_length(host: Host) -> int:
    log = host.state_dir / "commands.log"
    return len(log.read_text().splitlines()) if log.exists() else 0
