"""What thinjail reads of the host's state and keeps between runs: the interfaces
(`ifconfig -a`), the running jails (`jls`), what a jail was started with (a record in the
state directory) and what freebsd-update last offered (a record in the state directory).

Steps and live checks both read them, so they live here, below both.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from tasks.files import write_atomic
from tasks.inputs import digest, file_digest
from tasks.locks import file_lock
from tasks.runner import CachedAnswer, Runner
from tasks.zfs import Zfs

HEADER_RE = re.compile(r"^(\S+): flags=")
INET_RE = re.compile(r"^\tinet (\S+) netmask (0x[0-9a-fA-F]+)")
INET6_RE = re.compile(r"^\tinet6 ([0-9a-fA-F:]+) prefixlen ([0-9]+)")
MEMBER_RE = re.compile(r"^\tmember: (\S+)")
DESCRIPTION_RE = re.compile(r"^\tdescription: (.*)$")


@dataclass(frozen=True)
class Interface:
    name: str
    description: str = ""
    members: tuple[str, ...] = ()  # of a bridge
    addresses: tuple[str, ...] = ()  # IPv4 and global IPv6, with their prefix length


def parse_ifconfig(text: str) -> dict[str, Interface]:
    """Interfaces from `ifconfig -a` (FreeBSD's layout: a `name: flags=...` line, then
    tab-indented lines)."""
    found: dict[str, dict] = {}
    current: dict | None = None
    for line in text.splitlines():
        header = HEADER_RE.match(line)
        if header:
            current = found.setdefault(header.group(1), {
                "name": header.group(1), "description": "", "members": [], "addresses": []})
            continue
        if current is None:
            continue
        if match := DESCRIPTION_RE.match(line):
            current["description"] = match.group(1)
        elif match := MEMBER_RE.match(line):
            current["members"].append(match.group(1))
        elif match := INET_RE.match(line):
            prefix = bin(int(match.group(2), 16)).count("1")
            current["addresses"].append(f"{match.group(1)}/{prefix}")
        elif (match := INET6_RE.match(line)) and not ipaddress.IPv6Address(
                match.group(1)).is_link_local:
            current["addresses"].append(f"{match.group(1)}/{match.group(2)}")
    return {name: Interface(name, i["description"], tuple(i["members"]), tuple(i["addresses"]))
            for name, i in found.items()}


class HostInterfaces(CachedAnswer[dict[str, Interface]]):
    """The host's network interfaces (those moved into a VNET jail are not listed)."""

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner, ("ifconfig", "-a"), "ifconfig", parse_ifconfig)

    def names(self) -> frozenset[str]:
        return frozenset(self.answer())


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


class RunningJails(CachedAnswer[frozenset[str]]):
    """The names of running jails."""

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner, ("jls", "name"), "jls", _words)

    def names(self) -> frozenset[str]:
        return self.answer()


# Kept beside a jail's start record (StateDir.started), named by these suffixes.
KEPT_FSTAB, HELD_BACK, ETC_BACKUP = ".fstab", ".held", ".etc.json"


@dataclass(frozen=True)
class StartInputs:
    """A jail as `start` sees it; the digest of its conf, fstab and base is what it runs
    with, and a change of it means a restart."""

    zfs: Zfs
    name: str
    epair: str
    devfs_ruleset: int
    conf: Path
    fstab: Path
    base: str
    record: Path  # where the digest of the inputs the jail was started with is kept

    def digest(self) -> str:
        # The files are read every time: a hand edit must restart the jail, and a file's
        # stat identity cannot tell an edit in the same second on file systems that keep
        # whole seconds (zfs-fuse does).
        # The level whose files the base holds, not the level freebsd-update reports: a
        # kernel-only patch changes no file of a base and restarts no jail.
        level = self.zfs.stamp(self.base, "installed") or self.zfs.stamp(self.base, "patch")
        return digest(file_digest(self.conf), file_digest(self.fstab), level,
                      self.zfs.stamp(self.base, "extract"))

    @property
    def kept_fstab(self) -> Path:
        """The fstab the jail last started with: what a failed move puts back."""
        return Path(f"{self.record}{KEPT_FSTAB}")

    @property
    def etc_backup(self) -> Path:
        """The jail's /etc files as they were before a move merged the new level's changes
        (tasks/steps/etc_merge.py): put back if the move fails."""
        return Path(f"{self.record}{ETC_BACKUP}")

    @property
    def held_back(self) -> Path:
        """Exists while a failed move has put the jail back (the next run tries again)."""
        return Path(f"{self.record}{HELD_BACK}")

    def current(self, running: RunningJails) -> bool:
        try:
            started_with = self.record.read_text()
        except FileNotFoundError:
            return False
        if started_with.startswith("{"):  # one version kept it in JSON, with file identities
            started_with = json.loads(started_with).get("digest")
        return self.name in running.names() and started_with == self.digest()


def first_mount(fstab: Path) -> str | None:
    """The source of an fstab's first mount (a jail's base); None for a missing file."""
    try:
        lines = fstab.read_text().splitlines()
    except FileNotFoundError:
        return None
    mounts = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    return mounts[0][0] if mounts else None


def forget_start(record: Path) -> None:
    """Remove what a jail's start kept (the jail is stopped or gone)."""
    for suffix in ("", KEPT_FSTAB, HELD_BACK, ETC_BACKUP):
        Path(f"{record}{suffix}").unlink(missing_ok=True)


@dataclass(frozen=True)
class Offer:
    """What `freebsd-update fetch` said of a base."""

    level: str  # the patch level the base is at once what was fetched is installed
    pending: bool = False  # there are files to install
    eol: str | None = None  # past its end of life: when security fixes stopped


@dataclass(frozen=True)
class OfferRecord:
    """What freebsd-update last offered for each release, and when it was asked. An answer
    given during this run is good for the rest of it, whatever max_age says."""

    path: Path
    max_age: int  # seconds an answer stays good; 0: ask on every run
    run_started: float = field(default_factory=time.time)

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def fresh(self, release: str) -> tuple[Offer, float] | None:
        """(offer, when asked) if asked less than max_age seconds ago."""
        entry = self._read().get(release)
        if not isinstance(entry, dict):
            return None
        level, eol, asked = entry.get("level"), entry.get("eol"), entry.get("asked")
        if not (isinstance(level, str) and isinstance(eol, str | None)
                and isinstance(asked, int | float)):
            return None
        if asked >= self.run_started or 0 <= time.time() - asked < self.max_age:
            return Offer(level, eol=eol), asked
        return None

    def record(self, release: str, offer: Offer) -> None:
        # Read, change, write under a lock: `doit -n` workers record other releases at once.
        with file_lock(self.path.with_name(self.path.name + ".lock")):
            data = self._read()
            data[release] = {"level": offer.level, "eol": offer.eol,
                             "asked": round(time.time(), 3)}
            write_atomic(self.path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


