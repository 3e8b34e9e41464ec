"""Shared by the fake FreeBSD commands: where their state lives, which FreeBSD the stand-in
host runs, and how calls are logged.

The fakes stand in for commands that exist only on FreeBSD. They check their arguments as
the real tools do, keep their state under $THINJAIL_FAKE_STATE and append every call to
$THINJAIL_FAKE_STATE/calls.log (one JSON object per line). tests/fakes/README.md says which
real behaviour each one models and where that comes from.

The host is described by the environment:
- THINJAIL_FAKE_FREEBSD: the host's FreeBSD version, "14.4" or "15.1" (default 15.1);
- THINJAIL_FAKE_DATE: today's date on the host, YYYY-MM-DD (default: the real date), which
  decides which releases are past their end of life;
- THINJAIL_FAKE_ETC: the host's /etc, for the files rc.d reads by their fixed path
  (/etc/rc.conf, /etc/jail.conf, /etc/jail.conf.d/).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

VERSIONS = ("14.4", "15.1")


def state_dir() -> Path:
    path = Path(os.environ["THINJAIL_FAKE_STATE"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def freebsd_version() -> str:
    version = os.environ.get("THINJAIL_FAKE_FREEBSD", "15.1")
    if version not in VERSIONS:
        raise SystemExit(f"fake: THINJAIL_FAKE_FREEBSD={version}: not one of {VERSIONS}")
    return version


def freebsd_major() -> int:
    return int(freebsd_version().split(".")[0])


def today() -> datetime.date:
    text = os.environ.get("THINJAIL_FAKE_DATE")
    return datetime.date.fromisoformat(text) if text else datetime.date.today()


def host_etc() -> Path:
    """The host's /etc (rc.d reads /etc/rc.conf and /etc/jail.conf by these paths)."""
    return Path(os.environ.get("THINJAIL_FAKE_ETC", "/etc"))


def log_call(tool: str) -> list[str]:
    """Log this call and return its arguments."""
    args = sys.argv[1:]
    entry = {"tool": tool, "argv": [tool, *args], "pager": os.environ.get("PAGER")}
    with (state_dir() / "calls.log").open("a") as f:
        f.write(json.dumps(entry) + "\n")
    return args


def fail(tool: str, message: str, code: int = 1) -> NoReturn:
    print(f"{tool}: {message}", file=sys.stderr)
    sys.exit(code)


def running_dir() -> Path:
    path = state_dir() / "running"
    path.mkdir(exist_ok=True)
    return path


def running_jail(jail: str) -> dict | None:
    """The running jail named `jail` (or with that jid), as the fake jail(8) recorded it."""
    jails = [json.loads(marker.read_text()) for marker in sorted(running_dir().iterdir())]
    return next((info for jid, info in enumerate(jails, start=1)
                 if jail in (info["name"], str(jid))), None)


def in_jail(info: dict) -> Callable[[str], tuple[str, Path]]:
    """Resolves a path as the running jail sees it (its fstab: the base at /, its clone at
    /skeleton): (the path with every link followed, the host path of it)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.support.jailview import resolve

    mounts = [line.split() for line in Path(info["fstab"]).read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    base, clone = Path(mounts[0][0]), Path(mounts[1][0])
    return lambda path: resolve(base, clone, path)


def dying_dir() -> Path:
    """Jails removed while something still references them (jls -d lists them); each file
    holds the time the jail is gone. How long a removed jail stays dying is the state file
    `dying-seconds` (default 0: gone at once)."""
    path = state_dir() / "dying"
    path.mkdir(parents=True, exist_ok=True)
    return path


def dying_seconds() -> float:
    try:
        return float((state_dir() / "dying-seconds").read_text())
    except FileNotFoundError:
        return 0.0


def dying(name: str) -> bool:
    try:
        return time.time() < float((dying_dir() / name).read_text())
    except FileNotFoundError:
        return False


@contextmanager
def locked() -> Iterator[None]:
    """Serialise changes to shared fake state, as the kernel serialises the real ones."""
    with (state_dir() / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def interfaces_file() -> Path:
    return state_dir() / "interfaces.json"


def load_interfaces() -> dict:
    path = interfaces_file()
    return json.loads(path.read_text()) if path.exists() else {}


def save_interfaces(interfaces: dict) -> None:
    interfaces_file().write_text(json.dumps(interfaces, indent=1, sort_keys=True))


def new_interface(**fields: object) -> dict:
    """An interface as the fakes keep it: bridge members, up, description, MAC, the jail
    (vnet) it was moved into, and its addresses ("192.168.7.10/24", "2001:db8::1/64")."""
    return {"members": [], "up": False, "descr": "", "ether": "", "vnet": None, "inet": [],
            **fields}
