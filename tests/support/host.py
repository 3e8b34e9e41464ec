"""A stand-in jail host for one test: a fresh parent dataset, host files in a temp dir, the
fake FreeBSD commands first on PATH, and a driver that runs doit as an admin would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support import zfspool

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes"
RELEASE = "15.1-RELEASE"  # the tests' release: supported on TODAY
TODAY = "2026-11-30"  # the stand-in hosts' date (which releases are past their end of life)
FREEBSD_VERSIONS = ("14.4", "15.1")  # what the stand-in hosts run (tests/fakes/README.md)


@dataclass
class Run:
    returncode: int
    results: dict[str, str]  # task name -> "success" | "up-to-date" | "fail" | ...
    output: str
    commands: list[dict[str, Any]]  # what thinjail's runner logged during this run
    calls: list[dict[str, Any]]  # what the fake FreeBSD commands logged during this run

    def ran(self) -> set[str]:
        """Tasks whose actions ran (group tasks such as jail:pg-1 are always up to date)."""
        return {name for name, result in self.results.items() if result != "up-to-date"}

    def changing_commands(self) -> list[list[str]]:
        """Commands the runner ran that change the host."""
        return [c["argv"] for c in self.commands if c["changes"]]


@dataclass
class Host:
    pool: str
    root: str  # the parent dataset (zfs.root); not created by the fixture
    tmp: Path
    mirror_url: str
    jails: dict[str, dict[str, Any]] = field(default_factory=lambda: {"pg-1": {"id": 111}})
    overrides: dict[str, Any] = field(default_factory=dict)
    repo: Path = REPO  # the checkout whose dodo.py runs
    fakes: bool = True  # False: a Linux host without even fake FreeBSD commands
    freebsd: str = "15.1"  # the FreeBSD version the fake commands behave as
    # An image of RELEASE's templates the host imports rather than building them (`image:`).
    templates_from: Path | None = None
    _seen: dict[str, int] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.tmp / "config.yaml"

    @property
    def fake_state(self) -> Path:
        return self.tmp / "fake-state"

    @property
    def etc(self) -> Path:
        return self.tmp / "etc"

    @property
    def state_dir(self) -> Path:
        return self.tmp / ".config.thinjail"

    def config(self) -> dict[str, Any]:
        self.etc.mkdir(exist_ok=True)
        resolv = self.tmp / "resolv.conf"
        if not resolv.exists():
            resolv.write_text("nameserver 192.168.7.1\n")
        config = {
            "release": RELEASE,
            "arch": "amd64",
            "mirror": self.mirror_url,
            "patch": "latest",
            "update_check": 0,  # ask the fake freebsd-update on every run
            "timezone": "Asia/Shanghai",
            "resolv_conf": str(resolv),
            "zfs": {"root": self.root},
            "paths": {"jail_conf": str(self.etc / "jail.conf"),
                      "jail_conf_d": str(self.etc / "jail.conf.d"),
                      "rc_conf": str(self.etc / "rc.conf")},
            "network": {"bridge": "igc0bridge", "uplink": "igc0", "subnet": "192.168.7.0/24",
                        "gateway": "192.168.7.101"},
            "jails": self.jails,
        }
        if self.templates_from:
            config["image"] = str(self.templates_from)
        config.update(self.overrides)
        return config

    def write_config(self, config: dict[str, Any] | None = None) -> None:
        self.config_path.write_text(yaml.safe_dump(config or self.config(), sort_keys=False))

    def env(self) -> dict[str, str]:
        path = os.pathsep.join([*([str(FAKES)] if self.fakes else []),
                                str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        return {**os.environ, "PATH": path, "THINJAIL_FAKE_STATE": str(self.fake_state),
                "THINJAIL_FAKE_FREEBSD": self.freebsd, "THINJAIL_FAKE_DATE": TODAY,
                "THINJAIL_FAKE_ETC": str(self.etc)}

    def seed_host(self, **uplink: Any) -> None:
        """The host's own NIC igc0 (the bridge's uplink, with no address unless given), as
        the fake ifconfig sees it."""
        interfaces = self.fake_state / "interfaces.json"
        if not interfaces.exists():
            self.fake_state.mkdir(parents=True, exist_ok=True)
            nic = {"members": [], "up": True, "descr": "", "ether": "58:9c:fc:10:ff:b6",
                   "vnet": None, "inet": [], **uplink}
            interfaces.write_text(json.dumps({"igc0": nic}))

    def interfaces(self) -> dict[str, Any]:
        return json.loads((self.fake_state / "interfaces.json").read_text())

    def set_interfaces(self, interfaces: dict[str, Any]) -> None:
        (self.fake_state / "interfaces.json").write_text(json.dumps(interfaces))

    def publish_patch(self, level: str, kernel_only: bool = False,
                      files: dict[str, str] | None = None) -> None:
        """FreeBSD published a patch level (what the fake freebsd-update offers); a
        kernel-only one changes no file of a jail template. `files` are those it changes,
        with their new content (for p0: the release's own, which the fake needs to tell a
        file changed locally under etc from one a patch may update)."""
        self.fake_state.mkdir(parents=True, exist_ok=True)
        for path, text in (files or {}).items():
            target = self.fake_state / "patch-files" / level / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        if level == "p0":
            return
        (self.fake_state / "latest-patch").write_text(level)
        if kernel_only:
            with (self.fake_state / "kernel-only-patches").open("a") as f:
                f.write(f"{level}\n")

    def fake(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run a fake FreeBSD command on this host, as its admin would (not counted among
        the next doit run's calls)."""
        result = subprocess.run(argv, capture_output=True, text=True, env=self.env(),
                                stdin=subprocess.DEVNULL, timeout=120)
        self._new_lines(self.fake_state / "calls.log")
        return result

    def doit(self, *args: str, write: bool = True) -> Run:
        """Run `doit <args> config=<file>` with doit's JSON reporter."""
        self.seed_host()
        if write:
            self.write_config()
        argv = [sys.executable, "-m", "doit", *args[:1], "-f", str(self.repo / "dodo.py"),
                "--reporter", "json", *args[1:], f"config={self.config_path}"]
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env(),
                              cwd=self.tmp, stdin=subprocess.DEVNULL, timeout=600)
        results: dict[str, str] = {}
        try:
            report = json.loads(proc.stdout)
            results = {t["name"]: t["result"] for t in report["tasks"]}
            parts = [report.get("out"), report.get("err"), proc.stderr,
                     *(t.get("err") for t in report["tasks"]),
                     *(t.get("error") for t in report["tasks"])]
            output = "\n".join(str(part) for part in parts if part)
        except (json.JSONDecodeError, KeyError):
            output = proc.stdout + proc.stderr
        return Run(proc.returncode, results, output,
                   self._new_lines(self.state_dir / "commands.log"),
                   self._new_lines(self.fake_state / "calls.log"))

    def report(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a doit command that only reports (`list`, `info`) as an admin would, with
        doit's own output (`doit info` exits 1 for a stale task)."""
        self.seed_host()
        return subprocess.run(
            [sys.executable, "-m", "doit", *args[:1], "-f", str(self.repo / "dodo.py"),
             *args[1:], f"config={self.config_path}"], capture_output=True, text=True,
            env=self.env(), cwd=self.tmp, stdin=subprocess.DEVNULL, timeout=600)

    def _new_lines(self, path: Path) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        lines = path.read_text().splitlines()
        start = self._seen.get(str(path), 0)
        self._seen[str(path)] = len(lines)
        return [json.loads(line) for line in lines[start:]]

    # what the host looks like ------------------------------------------------------------

    def dataset(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def exists(self, relative: str) -> bool:
        return self.dataset(relative) in self.names()

    def get(self, relative: str, prop: str) -> str:
        return zfspool.zfs_get(self.dataset(relative), prop)

    def mountpoint(self, relative: str = "") -> Path:
        return Path(zfspool.zfs_get(self.dataset(relative) if relative else self.root,
                                    "mountpoint"))

    def names(self) -> list[str]:
        try:
            return zfspool.zfs_names(self.root)
        except RuntimeError:
            return []

    def running(self) -> set[str]:
        running = self.fake_state / "running"
        return {p.name for p in running.iterdir()} if running.exists() else set()
