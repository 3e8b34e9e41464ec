"""Jail stage, per jail: clone -> fstab -> conf -> rc -> start, grouped as `jail:<name>`.

Rendered files are doit targets that depend on their template and their config slice; the
clone and the running jail are checked live. Nothing here ever re-clones an existing jail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.tools import config_changed

from tasks.checks import DatasetsExist, JailRunningCurrent, NotHeldBack, StartsAtBoot
from tasks.config import DEFAULT_DEVFS_RULESET, Network
from tasks.context import Context
from tasks.errors import ThinjailError
from tasks.files import write_atomic
from tasks.graph import step
from tasks.host_state import StartInputs, first_mount
from tasks.plan import JailPlan, level_of_base
from tasks.steps.datasets import clone_jail, newest_snapshot
from tasks.steps.etc_merge import EtcMerge, left_from
from tasks.steps.provision import provision_jail
from tasks.steps.rcconf import register_for_boot
from tasks.steps.render import render, write_managed
from tasks.steps.running import start_jail

COMMON_CONF = "jail.conf.j2"
JAIL_CONF = "jail.j2"
FSTAB = "fstab.j2"


def task_jail_conf(ctx: Context) -> dict[str, Any]:
    """Render the common jail.conf that includes every jail's own file."""
    paths = ctx.config.paths
    values = {"jail_conf": str(paths.jail_conf), "jail_conf_d": str(paths.jail_conf_d)}
    return step(ctx, f"write {paths.jail_conf}", _render,
                {"ctx": ctx, "template": COMMON_CONF, "path": paths.jail_conf,
                 "values": values}, targets=[str(paths.jail_conf)],
                file_dep=[str(ctx.templates_dir / COMMON_CONF)], uptodate=[config_changed(values)])


def task_clone(ctx: Context) -> Iterator[dict[str, Any]]:
    """Clone each jail's dataset from the skeleton snapshot, once: it holds the jail's data.

    An existing clone keeps its origin whatever changes upstream."""
    for plan in ctx.plan.jails():
        release = plan.release
        source = (f"the newest snapshot of {plan.skeleton}" if plan.pinned
                  else release.current_snapshot(ctx.zfs))
        yield step(ctx, f"clone {plan.container} from {source}",
                   _clone, {"ctx": ctx, "plan": plan},
                   name=plan.jail.name, task_dep=[f"snapshot:{release.release}", "host:datasets"],
                   uptodate=[DatasetsExist(ctx.zfs, (plan.container,))])


def _clone(ctx: Context, plan: JailPlan) -> None:
    # The snapshot as it is now: an update earlier in this run may have made a new one. A
    # new jail pinned to an older level gets that level's newest skeleton snapshot.
    snapshot = (newest_snapshot(ctx.runner, plan.skeleton, "base-") if plan.pinned
                else plan.release.current_snapshot(ctx.zfs))
    clone_jail(ctx.zfs, snapshot, plan.container)


def task_fstab(ctx: Context) -> Iterator[dict[str, Any]]:
    """Make each jail's root directory and nullfs fstab: base ro at /, clone rw at /skeleton.

    A jail that runs on another base (a move to a new patch level) gets its new fstab, with
    `rollout: one-at-a-time`, only once the jail that moves before it runs again."""
    previous = None  # the last jail that moves in this run
    for plan in ctx.plan.jails():
        name = plan.jail.name
        values = {
            "name": name,
            "base_root": str(ctx.zfs.mountpoint(plan.base)),
            "container_root": str(ctx.zfs.mountpoint(plan.container)),
            "jail_root": str(plan.jail_root),
        }
        started = start_inputs(ctx, plan)
        after = []
        if _moving(ctx, plan, started)[0]:
            if ctx.config.rollout == "one-at-a-time" and previous:
                after = [f"start:{previous}"]
            previous = name
        yield step(ctx, f"make {plan.jail_root} and write {plan.fstab} (base "
                   f"{plan.base})", _fstab,
                   {"ctx": ctx, "plan": plan, "values": values, "started": started},
                   name=name, targets=[str(plan.fstab), str(plan.jail_root)],
                   file_dep=[str(ctx.templates_dir / FSTAB)],
                   uptodate=[config_changed(values), NotHeldBack(name, started.held_back)],
                   task_dep=[f"clone:{name}", *after])


def _moving(ctx: Context, plan: JailPlan,
            started: StartInputs) -> tuple[bool, EtcMerge | None]:
    """Whether the jail moves to another base in this run, and how its /etc follows (None:
    the base it leaves is no level thinjail knows). A rollback it names must move. Worked
    out once per run: fstab:<name> and start:<name> both ask."""
    name = plan.jail.name
    if name not in ctx.moves:
        ctx.moves[name] = _work_out_move(ctx, plan, started)
    return ctx.moves[name]


def _work_out_move(ctx: Context, plan: JailPlan,
                   started: StartInputs) -> tuple[bool, EtcMerge | None]:
    name = plan.jail.name
    # A jail can run on another base only once its release has a later level than the
    # first build's, or once the release moved to pkgbase (a new base beside the one built
    # from base.txz): only then are the kept fstabs read.
    release = plan.release
    may_move = release.level or release.new_level or release.source == "pkgbase"
    runs_on = _runs_on(started) if may_move else None
    moves = runs_on not in (None, str(ctx.zfs.mountpoint(plan.base)))
    merge = _etc_merge(ctx, plan, str(runs_on), started.etc_backup) if moves else None
    if name in ctx.rollback and (merge is None or merge.restore_from is None):
        raise ThinjailError(f"rollback:{name}: {name} does not move: pin the level to go "
                            f"back to (jails: {name}: patch: pN, a level it ran on before)")
    return moves, merge


def _runs_on(started: StartInputs) -> str | None:
    """The base directory a jail thinjail started runs on: the first mount of the fstab it
    was started with (kept in the state directory; the fstab itself while an earlier
    thinjail kept none). None for a jail never started."""
    if not started.record.exists():
        return None
    for fstab in (started.kept_fstab, started.fstab):
        if fstab.exists():
            return first_mount(fstab)
    return None


def _etc_merge(ctx: Context, plan: JailPlan, runs_on: str, backup: Path) -> EtcMerge | None:
    """The /etc merge of a jail moving off the base mounted at `runs_on` (None when that
    base is no level thinjail knows)."""
    old_base = next((ds.name for ds in ctx.zfs.datasets().values()
                     if ds.mountpoint == runs_on and ds.name.endswith("-base")), None)
    if old_base is None:
        return None
    name, level = plan.jail.name, level_of_base(ctx.zfs, plan.base)
    restore_from = scratch = None
    if name in ctx.rollback:  # /etc as it was when the jail last left the pinned level
        restore_from = left_from(ctx.runner, ctx.zfs, plan.container, level)
        if restore_from is None:
            raise ThinjailError(f"rollback:{name}: {plan.container} has no @pre-* snapshot "
                                f"taken as it left {level}, to restore /etc from: `doit` "
                                f"alone moves {name} back and merges its /etc instead")
        scratch = f"{ctx.plan.trash}/rollback-{name}"
    return EtcMerge(container=plan.container,
                    old_skeleton=old_base.removesuffix("-base") + "-skeleton",
                    new_skeleton=plan.skeleton, level=level,
                    leaving=level_of_base(ctx.zfs, old_base), backup=backup,
                    restore_from=restore_from, scratch=scratch)


def _fstab(ctx: Context, plan: JailPlan, values: dict[str, str],
           started: StartInputs) -> None:
    plan.jail_root.mkdir(parents=True, exist_ok=True)
    if started.record.exists() and not started.kept_fstab.exists() and plan.fstab.exists():
        # Started by an earlier thinjail, which kept no copy: keep the one it runs with,
        # which a failed move puts back.
        write_atomic(started.kept_fstab, plan.fstab.read_bytes())
    _render(ctx, FSTAB, plan.fstab, values)
    started.held_back.unlink(missing_ok=True)  # the move is tried again


def conf_values(plan: JailPlan, network: Network) -> dict[str, Any]:
    """Everything templates/jail.j2 renders for one jail (its conf's config slice)."""
    jail = plan.jail
    return {
        "jail": {"name": jail.name, "id": jail.id, "ip": None if jail.ip is None else str(jail.ip),
                 "epair": jail.epair, "allow_mount": jail.allow_mount,
                 "devfs_ruleset": jail.devfs_ruleset,
                 "mac_a": jail.mac("a") if network.stable_mac else None,
                 "mac_b": jail.mac("b") if network.stable_mac else None},
        "network": {"gateway": str(network.gateway), "bridge": network.bridge},
        "jail_root": str(plan.jail_root),
        "fstab": str(plan.fstab),
        "vnet_ruleset": DEFAULT_DEVFS_RULESET,  # devfsrules_jail_vnet, commented as such
    }


def task_conf(ctx: Context) -> Iterator[dict[str, Any]]:
    """Render each jail's complete jail.conf.d/<name>.conf."""
    for plan in ctx.plan.jails():
        jail = plan.jail
        values = conf_values(plan, ctx.config.network)
        yield step(ctx, f"write {plan.conf}", _render,
                   {"ctx": ctx, "template": JAIL_CONF, "path": plan.conf, "values": values},
                   name=jail.name, targets=[str(plan.conf)],
                   file_dep=[str(ctx.templates_dir / JAIL_CONF)], uptodate=[config_changed(values)],
                   task_dep=[f"fstab:{jail.name}"])


def _render(ctx: Context, template: str, path: Path, values: dict[str, Any]) -> None:
    write_managed(path, render(ctx.templates_dir, template, **values), template)


def task_rc(ctx: Context) -> Iterator[dict[str, Any]]:
    """Add each jail to jail_list and point jail_<name>_conf at its conf: boot starts it so.

    rc.d/jail then starts it from the very file start:<name> uses, whatever `paths` say."""
    rc_conf = ctx.config.paths.rc_conf
    order = tuple(jail.name for jail in ctx.config.jails)
    for plan in ctx.plan.jails():
        name = plan.jail.name
        yield step(ctx, f"add {name} to jail_list in {rc_conf}, with {plan.jail.conf_var}="
                   f"{plan.conf}", register_for_boot,
                   {"runner": ctx.runner, "rc_conf": rc_conf, "lock": ctx.state.rc_conf_lock,
                    "name": name, "conf": plan.conf, "config_order": order},
                   name=name, uptodate=[StartsAtBoot(rc_conf, name, plan.conf)],
                   task_dep=[f"conf:{name}", "host:rc"])


def task_start(ctx: Context) -> Iterator[dict[str, Any]]:
    """Start each jail, or restart it when its conf, fstab or base changed."""
    for plan in ctx.plan.jails():
        name = plan.jail.name
        inputs = start_inputs(ctx, plan)
        # A pinned jail's base is a done level: the release's update does not change it.
        updated = [] if plan.pinned else [ctx.checks.base_updated(plan.release.update)]
        # A moving jail's /etc follows in the step that restarts it: a parallel run stopped
        # by another jail's failure leaves none with the new /etc on its old base.
        move = _moving(ctx, plan, inputs)[1]
        yield step(ctx, f"start {name}: jail -f {plan.conf} -c {name} (-rc if it runs)",
                   start_jail, {"runner": ctx.runner, "running": ctx.running,
                                "interfaces": ctx.interfaces, "inputs": inputs,
                                "move": move},
                   name=name, uptodate=[JailRunningCurrent(ctx.running, inputs), *updated],
                   # The bridge first: an uplink it refuses stops the run before anything.
                   task_dep=["host:bridge", f"rc:{name}", "jail_conf",
                             f"update:{plan.release.release}"])


def start_inputs(ctx: Context, plan: JailPlan) -> StartInputs:
    jail = plan.jail
    return StartInputs(ctx.zfs, name=jail.name, epair=jail.epair,
                       devfs_ruleset=jail.devfs_ruleset, conf=plan.conf, fstab=plan.fstab,
                       base=plan.base, record=ctx.state.started(jail.name))


def task_provision(ctx: Context) -> Iterator[dict[str, Any]]:
    """Install each jail's `packages` and enable its `services` once, and when they change."""
    for plan in ctx.plan.jails():
        jail = plan.jail
        if not (jail.packages or jail.services):
            continue
        want = plan.provision
        yield step(ctx, f"pkg -j {jail.name} install {' '.join(jail.packages) or '-'}; enable "
                   f"{' '.join(jail.services) or '-'}", provision_jail,
                   {"runner": ctx.runner, "zfs": ctx.zfs, "want": want},
                   name=jail.name, task_dep=[f"start:{jail.name}"], made_from=(want,),
                   uptodate=[ctx.checks.stamp_is(want.container, want)])


def task_rollback(ctx: Context) -> Iterator[dict[str, Any]]:
    """Move a jail back to the level its `patch:` pins, its /etc as before it left that
    level (`doit rollback:<name>`); `doit` alone moves it back and merges /etc."""
    for plan in ctx.plan.jails():
        name = plan.jail.name
        # fstab:<name> and start:<name> do it: restore, then move.
        yield group(name, f"move {name} to {plan.base} with /etc from its @pre-<level> "
                    "snapshot", f"start:{name}")


def group(name: str, doc: str, last_step: str) -> dict[str, Any]:
    """A task that names a jail's steps up to `last_step`: it runs them or not, and has
    nothing to do itself."""
    return {"name": name, "doc": doc, "actions": None, "uptodate": [True],
            "task_dep": [last_step]}


def task_jail(ctx: Context) -> Iterator[dict[str, Any]]:
    """Build and start jails: `doit jail:<name>` for one, `doit jail` (or `doit`) for all."""
    for plan in ctx.plan.jails():
        name = plan.jail.name
        yield group(name, f"jail {name} ({plan.jail.address}), cloned from "
                    f"{plan.release.release}", f"provision:{name}"
                    if plan.jail.packages or plan.jail.services else f"start:{name}")
