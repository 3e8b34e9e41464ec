"""Jail lifecycle commands an admin runs by name: stop, restart, destroy, purge, status, and
the orphan report every run includes. None of them is part of `doit` alone except the
report; removal only ever happens when asked for by name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tasks.checks import JailStopped, NoOrphans
from tasks.context import Context
from tasks.graph import step
from tasks.graph.jails import start_inputs
from tasks.host_state import KEPT_FSTAB, first_mount
from tasks.plan import JailFiles
from tasks.steps.levels import Level, levels_to_purge, purge_level
from tasks.steps.removal import destroy_jail, purge
from tasks.steps.running import start_jail, stop_jail
from tasks.steps.status import JailRow, print_status


def task_stop(ctx: Context) -> Iterator[dict[str, Any]]:
    """Stop jails (`doit stop:<name>`); a stopped jail stays stopped, its epair removed."""
    for plan in ctx.plan.jails():
        name = plan.jail.name
        yield step(ctx, f"stop {name}: jail -f {plan.conf} -r {name}", stop_jail,
                   {"runner": ctx.runner, "running": ctx.running, "conf": plan.conf,
                    "record": ctx.state.started(name), "name": name},
                   name=name, uptodate=[JailStopped(ctx.running, name)])


def task_restart(ctx: Context) -> Iterator[dict[str, Any]]:
    """Restart jails (`doit restart:<name>`), building what they need first."""
    for plan in ctx.plan.jails():
        name = plan.jail.name
        yield step(ctx, f"restart {name}: jail -f {plan.conf} -rc {name}", start_jail,
                   {"runner": ctx.runner, "running": ctx.running, "interfaces": ctx.interfaces,
                    "inputs": start_inputs(ctx, plan), "always": True},
                   name=name, task_dep=[f"start:{name}"])


def task_destroy(ctx: Context) -> Iterator[dict[str, Any]]:
    """Remove a jail (`doit destroy:<name>`): stop it, move its dataset to the trash, drop
    its conf, fstab and jail_list entry. There is no `doit destroy` for all jails."""
    names = {plan.jail.name for plan in ctx.plan.jails()} | set(ctx.plan.orphans())
    for name in sorted(names):
        files = ctx.plan.jail_files(name)
        yield step(ctx, f"stop {name} and move {files.container} to {ctx.plan.trash}",
                   _destroy, {"ctx": ctx, "files": files}, basename=f"destroy:{name}")


def _destroy(ctx: Context, files: JailFiles) -> None:
    destroy_jail(ctx.runner, ctx.zfs, ctx.running, files=files, trash_root=ctx.plan.trash,
                 record=ctx.state.started(files.name), rc_conf=ctx.config.paths.rc_conf,
                 lock=ctx.state.rc_conf_lock)


def task_purge(ctx: Context) -> dict[str, Any]:
    """Destroy for good what `destroy:<name>` moved to the trash, and the patch levels no
    jail uses beyond the newest `keep_levels` of each release."""
    entries = [f"{ctx.plan.trash}/{entry}" for entry in ctx.zfs.children(ctx.plan.trash)]
    levels = _levels_to_purge(ctx)
    what = [*entries, *(f"{level.base} and -skeleton" for level, _ in levels)]
    return step(ctx, f"destroy {', '.join(what) or 'nothing (no trash, no unused level)'}",
                _purge, {"ctx": ctx, "entries": entries, "levels": levels})


def _levels_to_purge(ctx: Context) -> list[tuple[Level, str]]:
    """Each level to purge, with the dataset that holds its release's later levels."""
    in_use = {plan.base for plan in ctx.plan.jails()}
    # A jail runs on the base its fstab mounts, configured or not (and a failed move may
    # have put it back on an older one).
    fstabs = [*ctx.plan.root_mountpoint.glob("*.fstab"),
              *ctx.state.started("-").parent.glob(f"*{KEPT_FSTAB}")]
    mounted = {first_mount(fstab) for fstab in fstabs}
    in_use |= {ds.name for ds in ctx.zfs.datasets().values() if ds.mountpoint in mounted}
    found = []
    for release in ctx.plan.releases():
        levels = ctx.plan.levels(release.release)
        found += [(level, release.levels)
                  for level in levels_to_purge(levels, in_use, ctx.config.keep_levels)]
    return found


def _purge(ctx: Context, entries: list[str], levels: list[tuple[Level, str]]) -> None:
    purge(ctx.zfs, entries)
    for level, levels_root in levels:
        purge_level(ctx.zfs, level, levels_root)


def task_orphans(ctx: Context) -> dict[str, Any]:
    """Report jails that config.yaml no longer names; nothing is removed."""
    return step(ctx, "report jails that config.yaml no longer names", _report_orphans,
                {"ctx": ctx}, uptodate=[NoOrphans(ctx.plan.orphans)])


def _report_orphans(ctx: Context) -> None:
    for name in ctx.plan.orphans():
        print(f"orphan: jail {name} is not in {ctx.config.source.name} but its dataset or "
              f"conf exists; nothing was removed. Add it back, or `doit destroy:{name}`.")


def task_status(ctx: Context) -> dict[str, Any]:
    """Show each jail: running or not, IP, release and patch level, origin, space used."""
    rows = [JailRow(p.jail.name, p.jail.address, p.release.release, p.base,
                    p.container) for p in ctx.plan.jails()]
    return step(ctx, "print the status of every jail", print_status,
                {"zfs": ctx.zfs, "running": ctx.running, "rows": rows,
                 "orphans": ctx.plan.orphans(), "warnings": ctx.warnings(),
                 "as_json": ctx.status_json}, verbosity=2)
