"""status: one line per jail, from the one ZFS listing and one `jls`. SUPPORT says whether
the jail's release still gets security fixes (EOL: it passed its end of life)."""

from __future__ import annotations

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


def status_table(zfs: Zfs, running: RunningJails, rows: Iterable[JailRow],
                 orphans: Iterable[str]) -> str:
    lines = [COLUMNS]
    for row in rows:
        ds = zfs.get(row.container)
        origin = ds.origin.rsplit("/", 1)[-1] if ds and ds.origin else "-"
        state = "running" if row.name in running.names() else (
            "stopped" if ds else "not built")
        support = "-" if zfs.stamp(row.base, "patch") is None else (
            "EOL" if zfs.stamp(row.base, "eol") else "yes")
        lines.append((row.name, state, row.ip, row.release,
                      zfs.stamp(row.base, "patch") or "-", support, origin,
                      human(ds.used) if ds else "-"))
    lines += [(name, "orphan", *["-"] * (len(COLUMNS) - 2)) for name in orphans]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines)


def print_status(zfs: Zfs, running: RunningJails, rows: list[JailRow],
                 orphans: list[str], warnings: list[str]) -> None:
    print(status_table(zfs, running, rows, orphans))
    for warning in warnings:
        print(f"warning: {warning}")
