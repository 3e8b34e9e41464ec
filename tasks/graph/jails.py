"""Jail stage, per jail: clone -> fstab -> conf -> rc -> start, grouped as `jail:<name>`.

Rendered files are doit targets that depend on their template and their config slice; the
clone and the running jail are checked live. Nothing here ever re-clones an existing jail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.tools import config_changed

from tasks.checks import DatasetsExist, InJailList, JailRunningCurrent
from tasks.context import Context
from tasks.graph import step
from tasks.plan import JailPlan
from tasks.steps.datasets import clone_jail
from tasks.steps.rcconf import add_to_jail_list
from tasks.steps.render import render, write_managed
from tasks.steps.start import StartInputs, start_jail

COMMON_CONF = "jail.conf.j2"
JAIL_CONF = "jail.j2"
FSTAB = "fstab.j2"


def task_jail_conf(ctx: Context) -> dict[str, Any]:
    """Render the common jail.conf that includes every jail's own file."""
    paths = ctx.config.paths
    values = {"jail_conf": str(paths.jail_conf), "jail_conf_d": str(paths.jail_conf_d)}
    return step(ctx, f"write {paths.jail_conf}", _render, ctx, COMMON_CONF, paths.jail_conf,
                values, targets=[str(paths.jail_conf)],
                file_dep=[str(ctx.templates_dir / COMMON_CONF)], uptodate=[config_changed(values)])


def task_clone(ctx: Context) -> Iterator[dict[str, Any]]:
    """Clone each jail's dataset from the skeleton snapshot, once: it holds the jail's data.

    An existing clone keeps its origin whatever changes upstream."""
    for plan in ctx.jail_plans():
        release = plan.release
        snapshot = release.snapshot()
        yield step(ctx, f"clone {plan.container} from {snapshot}",
                   clone_jail, ctx.zfs, snapshot, plan.container,
                   name=plan.jail.name, task_dep=[f"snapshot:{release.release}", "host:datasets"],
                   uptodate=[DatasetsExist(ctx.zfs, (plan.container,))])


def task_fstab(ctx: Context) -> Iterator[dict[str, Any]]:
    """Make each jail's root directory and nullfs fstab: base ro at /, clone rw at /skeleton."""
    for plan in ctx.jail_plans():
        values = {
            "name": plan.jail.name,
            "base_root": str(ctx.zfs.mountpoint(plan.release.base)),
            "container_root": str(ctx.zfs.mountpoint(plan.container)),
            "jail_root": str(plan.jail_root),
        }
        yield step(ctx, f"make {plan.jail_root} and write {plan.fstab}", _fstab, ctx, plan,
                   values, name=plan.jail.name, targets=[str(plan.fstab), str(plan.jail_root)],
                   file_dep=[str(ctx.templates_dir / FSTAB)], uptodate=[config_changed(values)],
                   task_dep=[f"clone:{plan.jail.name}"])


def _fstab(ctx: Context, plan: JailPlan, values: dict[str, str]) -> None:
    plan.jail_root.mkdir(parents=True, exist_ok=True)
    _render(ctx, FSTAB, plan.fstab, values)


def task_conf(ctx: Context) -> Iterator[dict[str, Any]]:
    """Render each jail's complete jail.conf.d/<name>.conf."""
    for plan in ctx.jail_plans():
        jail, network = plan.jail, ctx.config.network
        values = {
            "jail": {"name": jail.name, "id": jail.id, "ip": str(jail.ip),
                     "epair": jail.epair, "allow_mount": jail.allow_mount},
            "network": {"gateway": str(network.gateway), "bridge": network.bridge},
            "jail_root": str(plan.jail_root),
            "fstab": str(plan.fstab),
        }
        yield step(ctx, f"write {plan.conf}", _render, ctx, JAIL_CONF, plan.conf, values,
                   name=jail.name, targets=[str(plan.conf)],
                   file_dep=[str(ctx.templates_dir / JAIL_CONF)], uptodate=[config_changed(values)],
                   task_dep=[f"fstab:{jail.name}"])


def _render(ctx: Context, template: str, path: Path, values: dict[str, Any]) -> None:
    write_managed(path, render(ctx.templates_dir, template, **values), template)


def task_rc(ctx: Context) -> Iterator[dict[str, Any]]:
    """Add each jail to jail_list in rc.conf, so it starts at boot."""
    rc_conf = ctx.config.paths.rc_conf
    for plan in ctx.jail_plans():
        name = plan.jail.name
        yield step(ctx, f"add {name} to jail_list in {rc_conf}",
                   add_to_jail_list, ctx.runner, rc_conf, ctx.rc_conf_lock, name,
                   name=name, uptodate=[InJailList(rc_conf, name)],
                   task_dep=[f"conf:{name}", "host:rc"])


def task_start(ctx: Context) -> Iterator[dict[str, Any]]:
    """Start each jail, or restart it when its conf, fstab or base changed."""
    for plan in ctx.jail_plans():
        name = plan.jail.name
        inputs = StartInputs(ctx.zfs, plan.conf, plan.fstab, plan.release.base,
                             ctx.state_dir / "started" / name)
        yield step(ctx, f"start {name}: jail -f {plan.conf} -c {name} (-rc if it runs)",
                   start_jail, ctx.runner, ctx.running, inputs, name,
                   name=name, uptodate=[JailRunningCurrent(ctx.running, inputs, name),
                                        ctx.base_updated(plan.release.release)],
                   task_dep=[f"rc:{name}", "jail_conf", f"update:{plan.release.release}"])


def task_jail(ctx: Context) -> Iterator[dict[str, Any]]:
    """Build and start jails: `doit jail:<name>` for one, `doit jail` (or `doit`) for all."""
    for plan in ctx.jail_plans():
        name = plan.jail.name
        yield {
            "name": name,
            "doc": f"jail {name} ({plan.jail.ip}), cloned from {plan.release.release}",
            "actions": None,
            "task_dep": [f"start:{name}"],
        }
