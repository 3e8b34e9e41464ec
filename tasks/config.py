"""config.yaml loaded into typed objects and validated before any command runs.

Every problem is reported on one line that names the key and the fix; all problems are
collected first, so the user fixes a config in one round.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tasks.errors import ConfigError

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

TOP_KEYS = {"release", "arch", "mirror", "patch", "update_check", "timezone", "resolv_conf",
            "devfs_ruleset", "image", "zfs", "paths", "network", "jails"}
REQUIRED_TOP = ("zfs", "network", "jails")  # release: its own check names an example
JAIL_KEYS = {"id", "ip", "release", "allow_mount", "devfs_ruleset", "packages", "services"}
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

    def jail(self, name: str) -> Jail:
        for jail in self.jails:
            if jail.name == name:
                return jail
        raise KeyError(name)


def machine_of(arch: str) -> str:
    """The `uname -m` of a FreeBSD system of that architecture (arm64 for aarch64)."""
    return MIRROR_ARCH_DIRS[arch].split("/", 1)[0]


def conf_var(name: str) -> str:
    """The rc.conf variable naming a jail's own jail.conf for rc.d/jail, which makes the
    jail's name a shell word by turning every character not a letter or digit into `_`."""
    return f"jail_{re.sub(r'[^A-Za-z0-9]', '_', name)}_conf"


def release_major(release: str) -> int:
    return int(release.split(".", 1)[0])


def valid_image_source(value: Any) -> bool:
    """An image is named by an absolute path or an http(s):// or file:// URL."""
    return isinstance(value, str) and bool(
        URL_RE.fullmatch(value) or SAFE_PATH_RE.fullmatch(value))


# libyaml's parser when PyYAML was built with it (FreeBSD's py-pyyaml is): ten times faster.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last one silently,
    which would merge two jails of the same name without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges; keys written beside it override on purpose
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int) and key in seen:
                raise ConfigError(
                    [f"line {key_node.start_mark.line + 1}: key {key!r} appears twice: "
                     "keep one"])
            if isinstance(key, str | int):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: Path) -> Config:
    """Read and validate config.yaml; raise ConfigError listing every problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"cannot read config {path}: {exc.strerror}"]) from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path} is not valid YAML: {exc}".replace("\n", " ")]) from exc
    except ConfigError as exc:
        raise ConfigError([f"{path}: {p}" for p in exc.problems]) from exc
    return parse_config(data, path)


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

    def string(self, data: dict, key: str, prefix: str, pattern: re.Pattern[str],
               fix: str, default: str | None = None) -> str:
        value = data.get(key, default)
        full = f"{prefix}{key}"
        if value is None:
            self.bad(full, f"missing: {fix}")
            return ""
        if not isinstance(value, str) or not pattern.fullmatch(value):
            self.bad(full, f"{value!r} is not valid: {fix}")
            return ""
        return value

    def config(self, data: Any, source: Path) -> Config | None:
        if not isinstance(data, dict):
            self.bad("config", "must be a YAML mapping of keys such as release, zfs, jails")
            return None
        self.mapping(data, "", TOP_KEYS)
        for key in REQUIRED_TOP:
            if key not in data:
                self.bad(key, "missing: see config.yaml in the repository for an example")
        release = self.string(data, "release", "", RELEASE_RE,
                              "use a FreeBSD release name such as 15.1-RELEASE")
        arch = data.get("arch", "amd64")
        if not isinstance(arch, str) or arch not in MIRROR_ARCH_DIRS:
            self.bad("arch", f"{arch!r} is not known: use one of {', '.join(MIRROR_ARCH_DIRS)}")
        mirror = data.get("mirror", DEFAULT_MIRROR)
        if not isinstance(mirror, str) or not URL_RE.fullmatch(mirror):
            self.bad("mirror", f"{mirror!r} is not an http(s):// or file:// URL")
        patch = self.string(data, "patch", "", PATCH_RE,
                            "use 'latest' or a patch level such as p3", "latest")
        update_check = data.get("update_check", DEFAULT_UPDATE_CHECK)
        if isinstance(update_check, bool) or not isinstance(update_check, int) \
                or update_check < 0:
            self.bad("update_check", f"{update_check!r} is not valid: use the seconds between "
                     "two questions to freebsd-update for the latest patch level (0: every run)")
            update_check = DEFAULT_UPDATE_CHECK
        timezone = data.get("timezone", "host")
        if not isinstance(timezone, str) or (timezone != "host" and (
                not ZONE_RE.fullmatch(timezone) or ".." in timezone)):
            self.bad("timezone", f"{timezone!r} is not valid: use 'host' or a zone name "
                     "such as Asia/Shanghai")
        resolv_conf = self.path(data.get("resolv_conf", "/etc/resolv.conf"), "resolv_conf")
        image = data.get("image")
        if image is not None and not valid_image_source(image):
            self.bad("image", f"{image!r} is not an absolute path or an http(s)/file URL of an "
                     "image directory")
            image = None
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
        return Config(source=source.resolve(), release=release, arch=arch, mirror=mirror,
                      patch=patch, update_check=update_check, timezone=timezone,
                      resolv_conf=resolv_conf,
                      zfs_root=zfs_root, paths=paths, network=network, jails=jails,
                      image=image)

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
        return Jail(name=name, id=jid, ip=ip, release=release, allow_mount=allow_mount is True,
                    devfs_ruleset=ruleset,
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
