"""Release stage, once per release: fetch -> extract -> tzdns -> update -> skeleton -> certs
-> snapshot. Each step is current when its dataset carries the stamp it would write now."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tasks.checks import AnyOf, ArchiveVerified, DatasetsExist
from tasks.context import Context
from tasks.graph import step
from tasks.plan import ReleasePlan
from tasks.steps.certs import repair_links
from tasks.steps.datasets import snapshot_skeleton
from tasks.steps.extract import extract_base
from tasks.steps.fetch import fetch_release
from tasks.steps.skeleton import split_skeleton
from tasks.steps.tzdns import copy_tz_dns
from tasks.steps.update import update_base


def task_fetch(ctx: Context) -> Iterator[dict[str, Any]]:
    """Download base.txz and MANIFEST; the archive counts only once its sha256 matches."""
    for plan in ctx.release_plans():
        imported = [f"image_import:{plan.release}"] if ctx.image_source else []
        yield step(ctx, f"download {plan.mirror_dir}/base.txz into {plan.media}",
                   _fetch, {"ctx": ctx, "plan": plan},
                   name=plan.release, task_dep=["host:datasets", *imported],
                   # Once the base is extracted (or imported) the archive is not needed.
                   uptodate=[AnyOf((ArchiveVerified(ctx.zfs, plan.media, plan.archive_name,
                                                    plan.manifest_name),
                                    ctx.stamp_is(plan.base, "extract",
                                                 plan.extract_inputs)))])


def _fetch(ctx: Context, plan: ReleasePlan) -> None:
    fetch_release(plan.mirror_dir, ctx.zfs.directory(plan.media), plan.archive_name,
                  plan.manifest_name)


def task_extract(ctx: Context) -> Iterator[dict[str, Any]]:
    """Unpack the verified base.txz into the release's base dataset with bsdtar."""
    for plan in ctx.release_plans():
        yield step(ctx, f"extract {plan.archive_name} into {plan.base}", _extract,
                   {"ctx": ctx, "plan": plan}, name=plan.release,
                   task_dep=[f"fetch:{plan.release}"],
                   made_from=(plan.extract_inputs,),
                   uptodate=[ctx.stamp_is(plan.base, "extract", plan.extract_inputs)])


def _extract(ctx: Context, plan: ReleasePlan) -> None:
    media = ctx.zfs.directory(plan.media)
    extract_base(ctx.runner, ctx.zfs, plan.base, media / plan.archive_name,
                 media / plan.manifest_name, plan.extract_stamp)


def task_tzdns(ctx: Context) -> Iterator[dict[str, Any]]:
    """Set the template's time zone (a link into the base) and copy resolv.conf into its etc."""
    cfg = ctx.config
    for plan in ctx.release_plans():
        yield step(ctx, f"set time zone {cfg.timezone} and copy {cfg.resolv_conf} into the "
                   f"{plan.release} template", copy_tz_dns,
                   {"zfs": ctx.zfs, "base": plan.base, "skeleton": plan.skeleton,
                    "timezone": cfg.timezone, "resolv_conf": cfg.resolv_conf,
                    "stamp": plan.tzdns_stamp},
                   name=plan.release, task_dep=[f"extract:{plan.release}"],
                   made_from=(plan.tzdns_inputs,),
                   uptodate=[ctx.stamp_is(plan.base, "tzdns", plan.tzdns_inputs)])


def task_update(ctx: Context) -> Iterator[dict[str, Any]]:
    """Patch the base with freebsd-update; record its patch level and end-of-life state."""
    for plan in ctx.release_plans():
        yield step(ctx, f"freebsd-update {plan.base} to patch level {ctx.config.patch}",
                   update_base, {"runner": ctx.runner, "zfs": ctx.zfs, "offers": ctx.offers,
                                 "target": plan.update_target},
                   name=plan.release, task_dep=[f"tzdns:{plan.release}"],
                   uptodate=[ctx.base_updated(plan.release)])


def task_skeleton(ctx: Context) -> Iterator[dict[str, Any]]:
    """Move etc, root, tmp, var, usr/local, home into the skeleton; link them from the base."""
    for plan in ctx.release_plans():
        yield step(ctx, f"split {plan.skeleton} off {plan.base}",
                   split_skeleton, {"runner": ctx.runner, "zfs": ctx.zfs, "base": plan.base,
                                    "skeleton": plan.skeleton, "stamp": plan.skeleton_stamp},
                   name=plan.release,
                   # The first patch update also patches etc and var: it runs before the split.
                   task_dep=[f"update:{plan.release}"], made_from=(plan.skeleton_inputs,),
                   uptodate=[ctx.stamp_is(plan.base, "skeleton", plan.skeleton_inputs),
                             ctx.stamp_is(plan.skeleton, "skeleton", plan.skeleton_inputs)])


def task_certs(ctx: Context) -> Iterator[dict[str, Any]]:
    """Repair the relative links (etc/ssl/certs) that the skeleton split broke."""
    for plan in ctx.release_plans():
        yield step(ctx, f"repair moved symlinks in {plan.skeleton}",
                   repair_links, {"zfs": ctx.zfs, "skeleton": plan.skeleton,
                                  "stamp": plan.certs_stamp},
                   name=plan.release, task_dep=[f"skeleton:{plan.release}"],
                   made_from=(plan.certs_inputs,),
                   uptodate=[ctx.stamp_is(plan.skeleton, "certs", plan.certs_inputs)])


def task_snapshot(ctx: Context) -> Iterator[dict[str, Any]]:
    """Snapshot the finished skeleton under a content-named snapshot; new jails clone it."""
    for plan in ctx.release_plans():
        snapshot = plan.snapshot
        yield step(ctx, f"snapshot {snapshot}", snapshot_skeleton,
                   {"zfs": ctx.zfs, "snapshot": snapshot}, name=plan.release,
                   task_dep=[f"certs:{plan.release}", f"tzdns:{plan.release}"],
                   uptodate=[DatasetsExist(ctx.zfs, (snapshot,))])
