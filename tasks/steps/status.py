"""status: one line per jail, from the one ZFS listing and one `jls`. SUPPORT says whether
the jail's release still gets security fixes (EOL: it passed its end of life). With
`format=json`, the same as one JSON list, for tools (the Ansible module's per-jail facts)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from tasks.host_state import RunningJails
from tasks.zfs import Zfs

COLUMNS = ("JAIL", "STATE", "IP", "RELEASE", "PATCH", "SUPPORT", "ORIGIN", "USED")


@dataclass(frozen=True)
class JailRow:
    name: str
    ip: str
    release: str
    base: str
    container: str


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def status_rows(zfs: Zfs, running: RunningJails, rows: Iterable[JailRow],
                orphans: Iterable[str]) -> list[dict[str, str | int | None]]:
    """Each jail's state, address, release, patch level, end of life (its date, "passed", or
    None while supported), origin and space used; then each orphan."""
    found: list[dict[str, str | int | None]] = []
    for row in rows:
        ds = zfs.get(row.container)
        patch = zfs.stamp(row.base, "patch")
        found.append({
            "name": row.name,
            "state": "running" if row.name in running.names() else (
                "stopped" if ds else "not built"),
            "ip": row.ip, "release": row.release, "patch": patch,
            "eol": zfs.stamp(row.base, "eol") if patch is not None else None,
            "origin": ds.origin.rsplit("/", 1)[-1] if ds and ds.origin else None,
            "used": ds.used if ds else None,
        })
    found += [{"name": name, "state": "orphan", "ip": None, "release": None, "patch": None,
               "eol": None, "origin": None, "used": None} for name in orphans]
    return found


def status_table(jails: list[dict[str, str | int | None]]) -> str:
    lines = [COLUMNS]
    for jail in jails:
        support = "-" if jail["patch"] is None else ("EOL" if jail["eol"] else "yes")
        used = jail["used"]
        lines.append((str(jail["name"]), str(jail["state"]), str(jail["ip"] or "-"),
                      str(jail["release"] or "-"), str(jail["patch"] or "-"), support,
                      str(jail["origin"] or "-"),
                      human(used) if isinstance(used, int) else "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines)


def print_status(zfs: Zfs, running: RunningJails, rows: list[JailRow],
                 orphans: list[str], warnings: list[str], as_json: bool = False) -> None:
    jails = status_rows(zfs, running, rows, orphans)
    if as_json:
        print(json.dumps(jails))
        return
    print(status_table(jails))
    for warning in warnings:
        print(f"warning: {warning}")
