"""Images for CI: `doit image` exports a level of the configured release's templates (the
current one, or `level=pN`); with an image configured (`image:` in the config or `image=`
on the command line) `image_import` lands it as its level before the release stage, which
then finds fetch, extract, update and skeleton current.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tasks.context import Context
from tasks.errors import ThinjailError
from tasks.graph import step
from tasks.plan import ReleasePlan, level_of_base, media_dataset
from tasks.steps.datasets import newest_snapshot
from tasks.steps.image import export_image, import_image
from tasks.steps.levels import Level, level_datasets


def task_image(ctx: Context) -> dict[str, Any]:
    """Export a level of the release (`level=pN`, else the current one): its base and
    skeleton as verified zfs send streams (for CI)."""
    plan = ctx.plan.release(ctx.config.release)
    out_dir = ctx.image_dir or ctx.zfs.mountpoint(plan.media) / "images" \
        / f"{plan.release}-{ctx.config.arch}"
    level = None
    if ctx.image_export_level:
        levels = ctx.plan.levels(plan.release)
        level = next((lv for lv in levels if ctx.image_export_level in (lv.name, lv.patch)),
                     None)
        if level is None:
            have = ", ".join(lv.name for lv in levels) or "none yet"
            raise ThinjailError(f"image: {plan.release} has no level {ctx.image_export_level} "
                                f"on this host (it has: {have})")
    what = level.name if level else "its current level"
    return step(ctx, f"write the image of {plan.release} ({what}) to {out_dir}", _export,
                {"ctx": ctx, "plan": plan, "level": level, "out_dir": out_dir},
                task_dep=[f"snapshot:{plan.release}"], verbosity=2)


def _export(ctx: Context, plan: ReleasePlan, level: Level | None, out_dir: Path) -> None:
    if level is None or level.base == plan.base:  # the current level, as this run made it
        name = level_of_base(ctx.zfs, plan.base)
        export_image(ctx.runner, ctx.zfs, plan.release, ctx.config.arch, name, plan.base,
                     plan.current_snapshot(ctx.zfs), out_dir)
        return
    export_image(ctx.runner, ctx.zfs, plan.release, ctx.config.arch, level.name, level.base,
                 newest_snapshot(ctx.runner, level.skeleton, "base-"), out_dir)


def task_image_import(ctx: Context) -> Iterator[dict[str, Any]]:
    """Import the release's templates from the configured image instead of building them:
    as the first build, or as a level the host lacks beside the ones it has."""
    plan = ctx.plan.release(ctx.config.release)
    level = ctx.plan.imported_level(plan.release)
    base, skeleton, parent = plan.current_base, plan.current_skeleton, None
    if level:
        (base, skeleton), parent = level_datasets(plan.levels, level), plan.levels
    yield step(ctx, f"import the {plan.release} templates from {ctx.image_source}",
               _import, {"ctx": ctx, "plan": plan, "targets": {"base": base,
                                                              "skeleton": skeleton},
                         "parent": parent},
               name=plan.release, task_dep=["host:datasets"],
               made_from=(plan.extract, plan.split),
               uptodate=[ctx.checks.stamp_is(base, plan.extract),
                         ctx.checks.stamp_is(skeleton, plan.split)])


def _import(ctx: Context, plan: ReleasePlan, targets: dict[str, str],
            parent: str | None) -> None:
    import_image(ctx.runner, ctx.zfs, str(ctx.image_source), image_staging(ctx, plan.release),
                 plan.release, ctx.config.arch, targets, parent)


def image_staging(ctx: Context, release: str) -> Path:
    return ctx.zfs.directory(media_dataset(ctx.config)) / f".import-{release}"
