"""tzdns: give the template the time zone and DNS resolver configuration.

Writes etc/localtime (a copy, as tzsetup makes it), var/db/zoneinfo (the zone name, which
freebsd-update and tzsetup read) and etc/resolv.conf, wherever etc and var live now: in the
base before the skeleton split, in the skeleton after it.
"""

from __future__ import annotations

from pathlib import Path

from tasks.errors import ThinjailError
from tasks.plan import HOST_LOCALTIME
from tasks.steps.tree import template_path, write_atomic
from tasks.zfs import Zfs

STEP = "tzdns"
HOST_ZONEINFO = Path("/var/db/zoneinfo")


def copy_tz_dns(zfs: Zfs, base: str, skeleton: str, timezone: str, resolv_conf: Path,
                stamp: str) -> None:
    base_root, skeleton_root = zfs.directory(base), zfs.directory(skeleton)

    def inside(relative: str) -> Path:
        return template_path(base_root, skeleton_root, relative)

    if timezone == "host":
        zone_file, zone_name = HOST_LOCALTIME, _read_or_none(HOST_ZONEINFO)
    else:
        zone_file, zone_name = base_root / "usr/share/zoneinfo" / timezone, timezone
    if not zone_file.is_file():
        raise ThinjailError(f"{STEP}: time zone file {zone_file} does not exist: set "
                            "`timezone` to a zone of usr/share/zoneinfo, or to host")
    if not resolv_conf.is_file():
        raise ThinjailError(f"{STEP}: {resolv_conf} does not exist: set `resolv_conf` to the "
                            "resolver configuration the jails should use")
    localtime = inside("etc/localtime")
    if localtime.is_symlink():
        localtime.unlink()
    write_atomic(localtime, zone_file.read_bytes())
    if zone_name:
        inside("var/db").mkdir(parents=True, exist_ok=True)
        write_atomic(inside("var/db/zoneinfo"), (zone_name.strip() + "\n").encode())
    write_atomic(inside("etc/resolv.conf"), resolv_conf.read_bytes())
    zfs.set_stamp(base, "tzdns", stamp, STEP)


def _read_or_none(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
