"""tzdns: give the template the time zone and DNS resolver configuration.

A named zone makes etc/localtime a link to /usr/share/zoneinfo/<zone>, as tzsetup keeps it
when it is a link: in a jail that path is in the shared base, so tzdata errata that patch
the base reach every jail. With `timezone: host` the host's /etc/localtime is copied (the
host's zone may not exist in the release). var/db/zoneinfo gets the zone name, which
freebsd-update and tzsetup read, and etc/resolv.conf the resolver configuration; all are
written wherever etc and var live now: in the base before the skeleton split, in the
skeleton after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from tasks.errors import ThinjailError
from tasks.files import link_beneath, write_beneath
from tasks.inputs import StepInputs
from tasks.steps.tree import is_plain_file, template_root
from tasks.zfs import Zfs

STEP = "tzdns"
HOST_ZONEINFO = Path("/var/db/zoneinfo")
HOST_LOCALTIME = Path("/etc/localtime")


@dataclass(frozen=True)
class TzDnsInputs(StepInputs):
    """The zone and resolver configuration, written into the template whose base was
    extracted with stamp `extract`; the host files are stamped by their content."""

    STEP = STEP
    STAMPED = ("version", "extract", "timezone", "zone_file", "resolv_conf_content")
    version: ClassVar[int] = 2
    base: str
    skeleton: str
    timezone: str  # a zone of usr/share/zoneinfo, or "host"
    resolv_conf: Path
    extract: str
    zone_file: str  # the zone, or with "host" the digest of the host's localtime
    resolv_conf_content: str  # its digest


def copy_tz_dns(zfs: Zfs, want: TzDnsInputs) -> None:
    base, timezone, resolv_conf = want.base, want.timezone, want.resolv_conf
    base_root, skeleton_root = zfs.directory(base), zfs.directory(want.skeleton)

    def write(relative: str, data: bytes) -> None:
        write_beneath(template_root(base_root, skeleton_root, relative, STEP), relative, data,
                      STEP)

    zone = f"usr/share/zoneinfo/{timezone}"
    if timezone == "host":
        zone_name = _read_or_none(HOST_ZONEINFO)
        if not HOST_LOCALTIME.is_file():
            raise ThinjailError(f"{STEP}: the host has no {HOST_LOCALTIME}: set `timezone` to "
                                "a zone name such as Asia/Shanghai")
    elif is_plain_file(base_root, zone):
        zone_name = timezone
    else:
        raise ThinjailError(f"{STEP}: the {base} template has no time zone file {zone}: set "
                            "`timezone` to a zone of usr/share/zoneinfo, or to host")
    if not resolv_conf.is_file():
        raise ThinjailError(f"{STEP}: {resolv_conf} does not exist: set `resolv_conf` to the "
                            "resolver configuration the jails should use")
    if timezone == "host":
        write("etc/localtime", HOST_LOCALTIME.read_bytes())  # a rename: a link is replaced
    else:
        link_beneath(template_root(base_root, skeleton_root, "etc/localtime", STEP),
                     "etc/localtime", f"/{zone}", STEP)
    if zone_name:
        write("var/db/zoneinfo", (zone_name.strip() + "\n").encode())
    write("etc/resolv.conf", resolv_conf.read_bytes())
    zfs.set_stamp(base, STEP, want.stamp, STEP)


def _read_or_none(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
