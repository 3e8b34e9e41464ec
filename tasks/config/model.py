"""The config as typed objects, and the names, patterns and defaults its keys follow."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# <mirror>/<machine>/<machine_arch>/<release>/: the directory layout of FreeBSD's mirrors.
MIRROR_ARCH_DIRS = {
    "amd64": "amd64/amd64",
    "i386": "i386/i386",
    "arm64": "arm64/aarch64",
    "aarch64": "arm64/aarch64",
    "riscv64": "riscv/riscv64",
    "powerpc64": "powerpc/powerpc64",
    "powerpc64le": "powerpc/powerpc64le",
}
IFNAMSIZ = 15  # longest interface name FreeBSD accepts (IFNAMSIZ 16 with the NUL)
IF_MAXUNIT = 32767  # highest unit number of a cloned interface (epair<id>)
DEFAULT_MIRROR = "https://download.freebsd.org/ftp/releases"

# Patterns are applied with fullmatch: `$` alone would let a trailing newline through.
URL_RE = re.compile(r"(https?|file)://[^\s'\"]+")
PKG_URL_RE = re.compile(r"(pkg\+https?|https?|file)://[^\s'\"{}$]+")
RELEASE_RE = re.compile(r"^[0-9]{1,3}\.[0-9]{1,3}-(RELEASE|RC[0-9]+|BETA[0-9]+|ALPHA[0-9]+)$")
PATCH_RE = re.compile(r"^(latest|p[0-9]{1,4})$")
ZONE_RE = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
# ZFS component names allow more, but these characters are safe in a shell, jail.conf and fstab.
ZFS_COMPONENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
# A jail name is a jail.conf block name, a ZFS component, a hostname and a shell word:
# no '.' (a child jail), no '/', and not all digits (jail.conf would read it as a jid).
JAIL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
IFNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9_./+-]*$")

TOP_KEYS = {"release", "source", "arch", "mirror", "patch", "update_check", "rollout",
            "keep_levels", "timezone", "resolv_conf", "devfs_ruleset", "image", "pkgbase_set",
            "pkgbase_mirror", "pkgbase_keys", "signature", "zfs", "paths", "network", "jails"}
# Where a release's base comes from: FreeBSD's distribution sets (base.txz, patched with
# freebsd-update) or its base packages (pkgbase), the only way from FreeBSD 16 on.
SOURCES = ("base.txz", "pkgbase")
PKGBASE_ONLY_FROM = 16  # the first major release without base.txz and freebsd-update
PKGBASE_SETS = ("FreeBSD-set-minimal-jail", "FreeBSD-set-base-jail")
DEFAULT_PKGBASE_MIRROR = "pkg+https://pkg.FreeBSD.org"  # <mirror>/${ABI}/base_release_<minor>
SIGNATURES = ("fingerprints", "none")
# How jails move to a new patch level: one running again before the next moves, or all at
# once (with `doit -n`).
ROLLOUTS = ("one-at-a-time", "parallel")
# Patch levels of a release that `doit purge` keeps besides those jails use: the newest ones.
DEFAULT_KEEP_LEVELS = 2
LEVEL_PIN_RE = re.compile(r"^p[0-9]{1,4}$")  # a jail's `patch:` pin
REQUIRED_TOP = ("zfs", "network", "jails")  # release: its own check names an example
JAIL_KEYS = {"id", "ip", "release", "source", "patch", "allow_mount", "devfs_ruleset",
             "packages", "services"}
NETWORK_KEYS = {"bridge", "uplink", "subnet", "gateway", "stable_mac"}
PACKAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+@/-]*$")  # pkg names and origins
SERVICE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # an rc.d name: <name>_enable
DEFAULT_DEVFS_RULESET = 5  # devfsrules_jail_vnet
# The rulesets of /etc/defaults/devfs.rules a jail uses; both hide bpf, which dhclient needs.
BPF_HIDING_RULESETS = {4: "devfsrules_jail", 5: "devfsrules_jail_vnet"}
DHCP = "dhcp"
# Seconds an answer of `freebsd-update fetch` (the latest patch level) is reused: asking is a
# round trip to the update servers, and admins rerun thinjail after every edit.
DEFAULT_UPDATE_CHECK = 3600
PATH_DEFAULTS = {
    "jail_conf": "/etc/jail.conf",
    "jail_conf_d": "/etc/jail.conf.d",
    "rc_conf": "/etc/rc.conf",
}


@dataclass(frozen=True)
class Jail:
    name: str
    id: int
    ip: ipaddress.IPv4Interface | None  # None: the jail asks DHCP (`ip: dhcp`)
    release: str | None = None  # pinned release of the base it mounts; None: see plan.py
    source: str | None = None  # where that release's base comes from (only with `release`)
    patch: str | None = None  # pinned patch level of that release (a base that exists)
    allow_mount: bool = False
    devfs_ruleset: int = DEFAULT_DEVFS_RULESET
    packages: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        """The jail's address as the config and status show it."""
        return DHCP if self.ip is None else str(self.ip)

    @property
    def conf_var(self) -> str:
        return conf_var(self.name)

    @property
    def epair(self) -> str:
        """Base name of the jail's epair; the host keeps `<epair>a`, the jail gets `<epair>b`."""
        return f"epair{self.id}"

    def mac(self, end: str) -> str:
        """A stable, locally administered MAC address for epair end "a" or "b", derived from
        the jail's name (so DHCP reservations and ARP caches survive restarts)."""
        digest = hashlib.sha256(self.name.encode()).digest()
        return ":".join(f"{b:02x}" for b in (0x02, *digest[:4], 0x0A if end == "a" else 0x0B))


@dataclass(frozen=True)
class Network:
    bridge: str
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    uplink: str | None = None
    stable_mac: bool = False  # derive the epair's MAC addresses from the jail's name


@dataclass(frozen=True)
class Paths:
    jail_conf: Path
    jail_conf_d: Path
    rc_conf: Path


@dataclass(frozen=True)
class Config:
    source: Path
    release: str
    arch: str
    mirror: str
    patch: str
    timezone: str
    resolv_conf: Path
    zfs_root: str
    paths: Paths
    network: Network
    jails: tuple[Jail, ...] = field(default=())
    image: str | None = None  # templates to import instead of building them (see image.py)
    update_check: int = DEFAULT_UPDATE_CHECK
    rollout: str = ROLLOUTS[0]
    keep_levels: int = DEFAULT_KEEP_LEVELS
    base_source: str = SOURCES[0]  # `source:` of `release`; see source_of for the others
    pkgbase_set: str = PKGBASE_SETS[0]
    pkgbase_mirror: str = DEFAULT_PKGBASE_MIRROR
    pkgbase_keys: str | None = None  # default: /usr/share/keys/pkgbase-<major>
    signature: str = SIGNATURES[0]

    def source_of(self, release: str) -> str:
        """Where a release's base comes from: a jail's `source` next to its `release` pin,
        the top-level `source` for the global release, else the release's default."""
        for jail in self.jails:
            if jail.release == release and jail.source:
                return jail.source
        return self.base_source if release == self.release else default_source(release)

    def jail(self, name: str) -> Jail:
        for jail in self.jails:
            if jail.name == name:
                return jail
        raise KeyError(name)


# `uname -m` of other systems, in FreeBSD's words (freebsd-update uses the host's).
MACHINE_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "i686": "i386", "i586": "i386",
                   "riscv64": "riscv", "ppc64": "powerpc", "ppc64le": "powerpc"}


def host_machine() -> str:
    machine = os.uname().machine
    return MACHINE_ALIASES.get(machine, machine)


def machine_of(arch: str) -> str:
    """The `uname -m` of a FreeBSD system of that architecture (arm64 for aarch64)."""
    return MIRROR_ARCH_DIRS[arch].split("/", 1)[0]


def conf_var(name: str) -> str:
    """The rc.conf variable naming a jail's own jail.conf for rc.d/jail, which makes the
    jail's name a shell word by turning every character not a letter or digit into `_`."""
    return f"jail_{re.sub(r'[^A-Za-z0-9]', '_', name)}_conf"


def release_major(release: str) -> int:
    return int(release.split(".", 1)[0])


def default_source(release: str) -> str:
    return "pkgbase" if release_major(release) >= PKGBASE_ONLY_FROM else "base.txz"


def valid_image_source(value: Any) -> bool:
    """An image is named by an absolute path or an http(s):// or file:// URL."""
    return isinstance(value, str) and bool(
        URL_RE.fullmatch(value) or SAFE_PATH_RE.fullmatch(value))


