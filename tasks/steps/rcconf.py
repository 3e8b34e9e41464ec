"""rc.conf settings of the jail host, written with sysrc(8) and read back directly.

Reading parses the file (cheap, no subprocess), so checking "is pg-1 in jail_list" costs no
command per jail; writing goes through sysrc, which keeps the file's format and comments.
Each read-and-write holds a lock, so jails added in parallel (`doit -n`) are all kept.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from tasks.config import conf_var
from tasks.locks import file_lock
from tasks.runner import Runner

ASSIGNMENT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
# A value sysrc writes, "..." with nothing sh would expand or unquote in it: read as is.
PLAIN_QUOTED_RE = re.compile(r'"([^"\\$`]*)"\s*')
HOST_SETTINGS = {"jail_enable": "YES", "jail_parallel_start": "YES", "jail_reverse_stop": "YES"}


def read_rc_vars(rc_conf: Path) -> dict[str, str]:
    """The variables an rc.conf assigns (the last assignment wins, as in sh)."""
    try:
        stat = rc_conf.stat()
    except FileNotFoundError:
        return {}
    # Every jail's rc task asks; parse each version of the file once.
    return dict(_parse_rc_conf(rc_conf, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parse_rc_conf(rc_conf: Path, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    values: dict[str, str] = {}
    try:
        lines = rc_conf.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ()
    for line in lines:
        match = ASSIGNMENT_RE.match(line)
        if not match:
            continue
        plain = PLAIN_QUOTED_RE.fullmatch(match.group(2))
        if plain:  # nearly every line, and shlex is slow
            values[match.group(1)] = plain.group(1)
            continue
        try:
            words = shlex.split(match.group(2), comments=True)
        except ValueError:
            continue
        values[match.group(1)] = " ".join(words)
    return tuple(values.items())


def missing_settings(rc_conf: Path, wanted: Mapping[str, str]) -> dict[str, str]:
    current = read_rc_vars(rc_conf)
    return {k: v for k, v in wanted.items() if current.get(k) != v}


def set_rc_vars(runner: Runner, rc_conf: Path, lock: Path, wanted: Mapping[str, str],
                step: str) -> None:
    with file_lock(lock):
        changes = missing_settings(rc_conf, wanted)
        if changes:
            runner.run(["sysrc", "-f", str(rc_conf),
                        *(f"{k}={v}" for k, v in changes.items())], step=step)


def with_jail(current: list[str], name: str, config_order: tuple[str, ...]) -> list[str]:
    """current with name added: before the first entry that config.yaml lists after it, else
    at the end. Entries already there never move, and jails added in one run land in config
    order whichever task runs first."""
    later = set(config_order[config_order.index(name) + 1:]) if name in config_order else set()
    position = next((i for i, entry in enumerate(current) if entry in later), len(current))
    return [*current[:position], name, *current[position:]]


def boot_settings(rc_conf: Path, name: str, conf: Path,
                  config_order: tuple[str, ...]) -> dict[str, str]:
    """What rc.conf lacks so that boot starts the jail from its own file: jail_list names it
    (see with_jail for where), and `jail_<name>_conf` points rc.d/jail at the file start:J
    uses, whatever `paths` say and whichever file rc.d/jail would otherwise pick."""
    values = read_rc_vars(rc_conf)
    missing = {}
    current = values.get("jail_list", "").split()
    if name not in current:
        missing["jail_list"] = " ".join(with_jail(current, name, config_order))
    if values.get(conf_var(name)) != str(conf):
        missing[conf_var(name)] = str(conf)
    return missing


def register_for_boot(runner: Runner, rc_conf: Path, lock: Path, name: str, conf: Path,
                      config_order: tuple[str, ...]) -> None:
    """Start the jail at boot, from its own jail.conf.d file."""
    with file_lock(lock):
        missing = boot_settings(rc_conf, name, conf, config_order)
        if missing:
            runner.run(["sysrc", "-f", str(rc_conf), *(f"{k}={v}" for k, v in missing.items())],
                       step="rc")


def unregister_for_boot(runner: Runner, rc_conf: Path, lock: Path, name: str) -> None:
    with file_lock(lock):
        values = read_rc_vars(rc_conf)
        if conf_var(name) in values:
            runner.run(["sysrc", "-f", str(rc_conf), "-x", conf_var(name)], step="destroy")
        if name in values.get("jail_list", "").split():
            runner.run(["sysrc", "-f", str(rc_conf), f"jail_list-={name}"], step="destroy")
