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
from tasks.plan import JailFiles
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
    """Destroy for good what `destroy:<name>` moved to the trash."""
    entries = [f"{ctx.plan.trash}/{entry}" for entry in ctx.zfs.children(ctx.plan.trash)]
    return step(ctx, f"destroy {', '.join(entries) or 'nothing (the trash is empty)'}",
                purge, {"zfs": ctx.zfs, "entries": entries})


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
    rows = [JailRow(p.jail.name, p.jail.address, p.release.release, p.release.base,
                    p.container) for p in ctx.plan.jails()]
    return step(ctx, "print the status of every jail", print_status,
                {"zfs": ctx.zfs, "running": ctx.running, "rows": rows,
                 "orphans": ctx.plan.orphans(), "warnings": ctx.warnings()}, verbosity=2)
