"""Images for CI: `doit image` exports the configured release's templates; with an image
configured (`image:` in the config or `image=` on the command line) `image_import` lands
them before the release stage, which then finds fetch, extract, update and skeleton current.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tasks.context import Context
from tasks.graph import step
from tasks.plan import ReleasePlan
from tasks.steps.image import export_image, import_image


def task_image(ctx: Context) -> dict[str, Any]:
    """Export the release's base and skeleton as verified zfs send streams (for CI)."""
    plan = ctx.plan.release(ctx.config.release)
    out_dir = ctx.image_dir or ctx.zfs.mountpoint(plan.media) / "images" \
        / f"{plan.release}-{ctx.config.arch}"
    return step(ctx, f"write the image of {plan.release} to {out_dir}", _export,
                {"ctx": ctx, "plan": plan, "out_dir": out_dir},
                task_dep=[f"snapshot:{plan.release}"], verbosity=2)


def _export(ctx: Context, plan: ReleasePlan, out_dir: Any) -> None:
    export_image(ctx.runner, ctx.zfs, plan.release, ctx.config.arch, plan.base,
                 plan.current_snapshot(ctx.zfs), out_dir)


def task_image_import(ctx: Context) -> Iterator[dict[str, Any]]:
    """Import the release's templates from the configured image instead of building them."""
    plan = ctx.plan.release(ctx.config.release)
    yield step(ctx, f"import the {plan.release} templates from {ctx.image_source}",
               _import, {"ctx": ctx, "plan": plan}, name=plan.release, task_dep=["host:datasets"],
               made_from=(plan.extract, plan.split),
               uptodate=[ctx.checks.stamp_is(plan.current_base, plan.extract),
                         ctx.checks.stamp_is(plan.current_skeleton, plan.split)])


def _import(ctx: Context, plan: ReleasePlan) -> None:
    staging = ctx.zfs.directory(plan.media) / f".import-{plan.release}"
    import_image(ctx.runner, ctx.zfs, str(ctx.image_source), staging, plan.release,
                 ctx.config.arch, {"base": plan.current_base, "skeleton": plan.current_skeleton})
