"""Validation of parsed config data: every problem on one line naming the key and the fix,
all of them collected first, so the admin fixes a config in one round."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.config.model import (
    BPF_HIDING_RULESETS,
    DEFAULT_DEVFS_RULESET,
    DEFAULT_KEEP_LEVELS,
    DEFAULT_MIRROR,
    DEFAULT_PKGBASE_MIRROR,
    DEFAULT_UPDATE_CHECK,
    DHCP,
    IF_MAXUNIT,
    IFNAME_RE,
    IFNAMSIZ,
    JAIL_KEYS,
    JAIL_NAME_RE,
    LEVEL_PIN_RE,
    MIRROR_ARCH_DIRS,
    NETWORK_KEYS,
    PACKAGE_RE,
    PATCH_RE,
    PATH_DEFAULTS,
    PKG_URL_RE,
    PKGBASE_ONLY_FROM,
    PKGBASE_SETS,
    RELEASE_RE,
    REQUIRED_TOP,
    ROLLOUTS,
    SAFE_PATH_RE,
    SERVICE_RE,
    SIGNATURES,
    SOURCES,
    TOP_KEYS,
    URL_RE,
    ZFS_COMPONENT_RE,
    ZONE_RE,
    Config,
    Jail,
    Network,
    Paths,
    default_source,
    release_major,
    valid_image_source,
)
from tasks.errors import ConfigError

REQUIRED = object()  # a rule's default for a key that must be given


def matches(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and bool(pattern.fullmatch(value))


def is_seconds(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_zone(value: Any) -> bool:
    return value == "host" or (matches(ZONE_RE)(value) and ".." not in value)


def is_safe_path(value: Any) -> bool:
    return matches(SAFE_PATH_RE)(value) and "/../" not in value


@dataclass(frozen=True)
class Rule:
    """One top-level key: what a valid value is, its default (or REQUIRED), and the fix a
    problem message names."""

    key: str
    valid: Callable[[Any], bool]
    default: Any
    fix: str


RULES = (
    Rule("release", matches(RELEASE_RE), REQUIRED,
         "use a FreeBSD release name such as 15.1-RELEASE"),
    Rule("arch", lambda v: isinstance(v, str) and v in MIRROR_ARCH_DIRS, "amd64",
         f"use one of {', '.join(MIRROR_ARCH_DIRS)}"),
    Rule("mirror", matches(URL_RE), DEFAULT_MIRROR, "use an http(s):// or file:// URL"),
    Rule("patch", matches(PATCH_RE), "latest", "use 'latest' or a patch level such as p3"),
    Rule("update_check", is_seconds, DEFAULT_UPDATE_CHECK,
         "use the seconds between two questions to freebsd-update for the latest patch level "
         "(0: every run)"),
    Rule("rollout", lambda v: v in ROLLOUTS, ROLLOUTS[0],
         f"use {' or '.join(ROLLOUTS)}: how jails move to a new patch level"),
    Rule("source", lambda v: v is None or v in SOURCES, None,
         f"use {' or '.join(SOURCES)}: where the release's base comes from"),
    Rule("pkgbase_set", matches(PACKAGE_RE), PKGBASE_SETS[0],
         f"use a base package set such as {' or '.join(PKGBASE_SETS)}"),
    Rule("pkgbase_mirror", matches(PKG_URL_RE), DEFAULT_PKGBASE_MIRROR,
         "use a pkg+https://, https://, http:// or file:// URL: the repository is "
         "<pkgbase_mirror>/${ABI}/base_release_<minor>"),
    Rule("pkgbase_keys", lambda v: v is None or is_safe_path(v), None,
         "use the absolute path of a directory with trusted/ fingerprints (default "
         "/usr/share/keys/pkgbase-<major>)"),
    Rule("signature", lambda v: v in SIGNATURES, SIGNATURES[0],
         "use fingerprints (the default), or none in so many words for an unsigned "
         "repository"),
    Rule("keep_levels", lambda v: is_seconds(v) and v >= 1, DEFAULT_KEEP_LEVELS,
         "use how many of a release's newest patch levels `doit purge` keeps (1 or more), "
         "besides those jails use"),
    Rule("timezone", is_zone, "host", "use 'host' or a zone name such as Asia/Shanghai"),
    Rule("resolv_conf", is_safe_path, "/etc/resolv.conf",
         "use an absolute path of letters, digits and ._+-/"),
    Rule("image", lambda v: v is None or valid_image_source(v), None,
         "use an absolute path or an http(s)/file URL of an image directory"),
)

def parse_config(data: Any, source: Path) -> Config:
    """Validate already-parsed YAML data; raise ConfigError listing every problem."""
    v = _Validator()
    config = v.config(data, source)
    if v.problems or config is None:
        raise ConfigError([f"{source}: {p}" for p in v.problems])
    return config


class _Validator:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.default_ruleset = DEFAULT_DEVFS_RULESET

    def bad(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.bad(key, f"must be a mapping, got {type(value).__name__}")
            return {}
        for unknown in sorted(set(map(str, value)) - allowed):
            self.bad(f"{key}.{unknown}" if key else unknown,
                     f"unknown key: remove it (known keys: {', '.join(sorted(allowed))})")
        return value

    def config(self, data: Any, source: Path) -> Config | None:
        if not isinstance(data, dict):
            self.bad("config", "must be a YAML mapping of keys such as release, zfs, jails")
            return None
        self.mapping(data, "", TOP_KEYS)
        for key in REQUIRED_TOP:
            if key not in data:
                self.bad(key, "missing: see config.yaml in the repository for an example")
        top = {rule.key: self.apply(rule, data) for rule in RULES}
        release, arch = top["release"], top["arch"]
        if isinstance(release, str) and RELEASE_RE.fullmatch(release):
            top["source"] = self.source("source", release, top["source"])
        zfs_root = self.zfs_root(self.mapping(data.get("zfs"), "zfs", {"root"}))
        paths = self.paths(self.mapping(data.get("paths"), "paths", set(PATH_DEFAULTS)))
        network = self.network(self.mapping(data.get("network"), "network", NETWORK_KEYS))
        self.default_ruleset = self.ruleset(data.get("devfs_ruleset", DEFAULT_DEVFS_RULESET),
                                            "devfs_ruleset")
        jails = self.jails(data.get("jails"), network)
        if arch == "i386":
            for key, value in [("release", release),
                               *((f"jails.{j.name}.release", j.release) for j in jails)]:
                if value and release_major(value) >= 15:
                    self.bad(key, f"{value} has no i386 build (FreeBSD 15 dropped i386): use "
                             "a 14.x release for i386, or arch: amd64")
        if self.problems or network is None:
            return None
        return Config(source=source.resolve(), release=release, arch=arch,
                      mirror=top["mirror"], patch=top["patch"],
                      update_check=top["update_check"], rollout=top["rollout"],
                      keep_levels=top["keep_levels"],
                      base_source=top["source"] or default_source(release),
                      pkgbase_set=top["pkgbase_set"], pkgbase_mirror=top["pkgbase_mirror"],
                      pkgbase_keys=top["pkgbase_keys"], signature=top["signature"],
                      timezone=top["timezone"],
                      resolv_conf=Path(top["resolv_conf"]), zfs_root=zfs_root, paths=paths,
                      network=network, jails=jails, image=top["image"])

    def source(self, key: str, release: str, source: Any) -> str | None:
        """A release's source, checked against what the release offers."""
        if source is not None and source not in SOURCES:
            self.bad(key, f"{source!r} is not a source: use {' or '.join(SOURCES)}")
            return None
        major = release_major(release)
        if source == "base.txz" and major >= PKGBASE_ONLY_FROM:
            self.bad(key, f"{release} has no base.txz and no freebsd-update (FreeBSD "
                     f"{PKGBASE_ONLY_FROM} and later ship the base only as packages): use "
                     "source: pkgbase")
            return None
        if (source or default_source(release)) == "pkgbase" and (
                major < 15 or not release.endswith("-RELEASE")):
            self.bad(key, f"{release} has no pkgbase release repository (base_release_<n> "
                     "exists from 15.0-RELEASE on): use source: base.txz")
            return None
        return source

    def apply(self, rule: Rule, data: dict) -> Any:
        """The key's value, its default if absent; a problem (and a stand-in) if invalid."""
        value = data.get(rule.key, rule.default)
        if value is REQUIRED:
            self.bad(rule.key, f"missing: {rule.fix}")
        elif not rule.valid(value):
            self.bad(rule.key, f"{value!r} is not valid: {rule.fix}")
        else:
            return value
        return rule.default if rule.default is not REQUIRED else ""

    def ruleset(self, value: Any, key: str) -> int:
        if value == 0 and not isinstance(value, bool):
            self.bad(key, "0 is no ruleset at all: the jail would see every device of the "
                     "host, raw disks included; use 5 (devfsrules_jail_vnet) or a ruleset of "
                     "your own from /etc/devfs.rules")
            return DEFAULT_DEVFS_RULESET
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            self.bad(key, f"{value!r} is not a devfs ruleset number (1-65535; 5 is "
                     "devfsrules_jail_vnet, see README.md for DHCP)")
            return DEFAULT_DEVFS_RULESET
        return value

    def names(self, value: Any, key: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(
                isinstance(v, str) and pattern.fullmatch(v) for v in value):
            self.bad(key, f"{value!r} must be a list of {what}")
            return ()
        return tuple(value)

    def path(self, value: Any, key: str) -> Path:
        if not isinstance(value, str) or not SAFE_PATH_RE.fullmatch(value) or "/../" in value:
            self.bad(key, f"{value!r} must be an absolute path of letters, digits and ._+-/")
            return Path("/")
        return Path(value)

    def zfs_root(self, data: dict) -> str:
        root = data.get("root")
        if root is None:
            self.bad("zfs.root", "missing: name the parent dataset, e.g. zdata/jails")
            return ""
        parts = root.split("/") if isinstance(root, str) else [""]
        if not all(ZFS_COMPONENT_RE.fullmatch(p) for p in parts):
            self.bad("zfs.root", f"{root!r} is not a safe dataset name: use pool/dataset "
                     "with letters, digits and _.:- in each component")
            return ""
        return root

    def paths(self, data: dict) -> Paths:
        values = {key: self.path(data.get(key, default), f"paths.{key}")
                  for key, default in PATH_DEFAULTS.items()}
        return Paths(**values)

    def ifname(self, data: dict, key: str, required: bool) -> str | None:
        value = data.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not IFNAME_RE.fullmatch(value) or len(value) > IFNAMSIZ:
            self.bad(f"network.{key}", f"{value!r} is not an interface name: letters, digits "
                     f"and _, starting with a letter, at most {IFNAMSIZ} characters")
            return None
        return value

    def network(self, data: dict) -> Network | None:
        bridge = self.ifname(data, "bridge", required=True)
        uplink = self.ifname(data, "uplink", required=False)
        try:
            subnet = ipaddress.IPv4Network(str(data.get("subnet")), strict=True)
        except ValueError:
            self.bad("network.subnet", f"{data.get('subnet')!r} is not an IPv4 network "
                     "such as 192.168.7.0/24 (host bits zero)")
            return None
        try:
            gateway = ipaddress.IPv4Address(str(data.get("gateway")))
        except ValueError:
            self.bad("network.gateway", f"{data.get('gateway')!r} is not an IPv4 address")
            return None
        if gateway not in subnet or gateway in (subnet.network_address,
                                                subnet.broadcast_address):
            self.bad("network.gateway", f"{gateway} is not a host address in {subnet}: "
                     "use the router's address on that subnet")
        stable_mac = data.get("stable_mac", False)
        if not isinstance(stable_mac, bool):
            self.bad("network.stable_mac", f"{stable_mac!r} must be true or false")
        if bridge is None:
            return None
        return Network(bridge=bridge, subnet=subnet, gateway=gateway, uplink=uplink,
                       stable_mac=stable_mac is True)

    def jails(self, data: Any, network: Network | None) -> tuple[Jail, ...]:
        if data is None:
            return ()
        if not isinstance(data, dict):
            self.bad("jails", "must be a mapping of jail name to {id: N}")
            return ()
        jails = []
        for name, spec in data.items():
            jail = self.jail(name, spec, network)
            if jail is not None:
                jails.append(jail)
        self.unique(jails, "id", lambda j: j.id, "give each jail its own id")
        sources: dict[str, tuple[str, str]] = {}
        for jail in jails:
            if jail.release and jail.source:
                other = sources.setdefault(jail.release, (jail.name, jail.source))
                if other[1] != jail.source:
                    self.bad(f"jails.{jail.name}.source", f"{jail.release} is {other[1]} for "
                             f"jail {other[0]}: a release has one source; say it once")
        self.unique([j for j in jails if j.ip is not None], "ip", lambda j: j.ip.ip,
                    "give each jail its own address")
        self.unique(jails, "name", lambda j: j.conf_var,
                    "rename one of them (rc.d/jail turns every character that is not a letter "
                    "or digit into '_', so their rc.conf variables would be the same)")
        if network is not None and network.stable_mac:
            self.unique(jails, "mac", lambda j: j.mac("b"), "rename one of the jails")
        return tuple(jails)

    def unique(self, jails: list[Jail], key: str, value: Any, fix: str) -> None:
        owner: dict[Any, str] = {}
        for jail in jails:
            v = value(jail)
            if v in owner:
                self.bad(f"jails.{jail.name}.{key}",
                         f"{v} is already used by jail {owner[v]}: {fix}")
            else:
                owner[v] = jail.name

    def jail(self, name: Any, spec: Any, network: Network | None) -> Jail | None:
        key = f"jails.{name}"
        if not isinstance(name, str) or not JAIL_NAME_RE.fullmatch(name) or name.isdigit():
            self.bad(key, f"jail name {name!r} is unsafe: use letters, digits, '-' and '_' "
                     "(no '.', not all digits, at most 63 characters)")
            return None
        spec = self.mapping(spec, key, JAIL_KEYS)
        if "id" not in spec:
            self.bad(f"{key}.id", "missing: give the jail a number, e.g. {id: 111}")
            return None
        jid = spec["id"]
        if isinstance(jid, bool) or not isinstance(jid, int) or jid < 1:
            self.bad(f"{key}.id", f"{jid!r} is not a positive integer")
            return None
        if jid > IF_MAXUNIT:
            self.bad(f"{key}.id", f"{jid} is over {IF_MAXUNIT}, the highest unit an epair can "
                     f"have (IF_MAXUNIT): use an id from 1 to {IF_MAXUNIT}")
            return None
        release = spec.get("release")
        if release is not None and not (isinstance(release, str)
                                        and RELEASE_RE.fullmatch(release)):
            self.bad(f"{key}.release", f"{release!r} is not valid: use a FreeBSD release name "
                     "such as 15.1-RELEASE, or leave it out")
            release = None
        source = spec.get("source")
        if source is not None:
            if release is None:
                self.bad(f"{key}.source", "goes with release: it says where that release's "
                         "base comes from (the global one's is the top-level source)")
                source = None
            else:
                source = self.source(f"{key}.source", release, source)
        patch = spec.get("patch")
        if patch is not None and not (isinstance(patch, str) and LEVEL_PIN_RE.fullmatch(patch)):
            self.bad(f"{key}.patch", f"{patch!r} is not valid: pin a patch level this host has "
                     "a base for, such as p3, or leave it out")
            patch = None
        allow_mount = spec.get("allow_mount", False)
        if not isinstance(allow_mount, bool):
            self.bad(f"{key}.allow_mount", f"{allow_mount!r} must be true or false")
        if network is None:
            return None
        ruleset = self.ruleset(spec.get("devfs_ruleset", self.default_ruleset),
                               f"{key}.devfs_ruleset")
        if spec.get("ip") == DHCP:
            ip = None
            if ruleset in BPF_HIDING_RULESETS:
                self.bad(f"{key}.ip", f"dhcp needs /dev/bpf in the jail, which devfs ruleset "
                         f"{ruleset} ({BPF_HIDING_RULESETS[ruleset]}) hides: add a ruleset that "
                         "unhides bpf to /etc/devfs.rules and set devfs_ruleset to it (README "
                         '"VNET details")')
                return None
        else:
            ip = self.jail_ip(key, jid, spec.get("ip"), network)
            if ip is None:
                return None
        return Jail(name=name, id=jid, ip=ip, release=release, source=source, patch=patch,
                    allow_mount=allow_mount is True, devfs_ruleset=ruleset,
                    packages=self.names(spec.get("packages"), f"{key}.packages", PACKAGE_RE,
                                        "package names such as nginx or www/nginx"),
                    services=self.names(spec.get("services"), f"{key}.services", SERVICE_RE,
                                        "rc.d service names such as nginx"))

    def jail_ip(self, key: str, jid: int, value: Any,
                network: Network) -> ipaddress.IPv4Interface | None:
        subnet = network.subnet
        if value is None:
            if jid >= subnet.num_addresses - 1:
                self.bad(f"{key}.ip", f"id {jid} is no host number in {subnet}: "
                         "set ip explicitly or pick a smaller id")
                return None
            ip = ipaddress.IPv4Interface(f"{subnet.network_address + jid}/{subnet.prefixlen}")
        else:
            try:
                text = str(value) if "/" in str(value) else f"{value}/{subnet.prefixlen}"
                ip = ipaddress.IPv4Interface(text)
            except ValueError:
                self.bad(f"{key}.ip", f"{value!r} is not an IPv4 address such as "
                         f"{subnet.network_address + 2}/{subnet.prefixlen}, or dhcp")
                return None
        if ip.network != subnet or ip.ip in (subnet.network_address, subnet.broadcast_address):
            self.bad(f"{key}.ip", f"{ip} is outside {subnet}: use a host address of "
                     "network.subnet with the same prefix length")
            return None
        if ip.ip == network.gateway:
            self.bad(f"{key}.ip", f"{ip.ip} is the gateway's address: pick another "
                     + ("ip" if value is not None else "id or set ip"))
            return None
        return ip
