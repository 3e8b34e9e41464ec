"""Release stage, once per release: fetch -> extract -> tzdns -> update -> skeleton -> certs
-> snapshot. Each step is current when its dataset carries the stamp it would write now."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tasks.checks import AnyOf, ArchiveVerified, RepoConfWritten, SnapshotTaken
from tasks.context import Context
from tasks.graph import step
from tasks.plan import ReleasePlan
from tasks.steps.certs import repair_links
from tasks.steps.datasets import snapshot_skeleton
from tasks.steps.extract import extract_base
from tasks.steps.fetch import fetch_release
from tasks.steps.pkgbase import PkgbaseInputs, install_base, write_repo_conf
from tasks.steps.skeleton import split_skeleton
from tasks.steps.tzdns import copy_tz_dns
from tasks.steps.update import update_base


def task_fetch(ctx: Context) -> Iterator[dict[str, Any]]:
    """Download base.txz and MANIFEST; the archive counts only once its sha256 matches.
    For a pkgbase release: write the conf of its base packages' repository."""
    for plan in ctx.plan.releases():
        want = plan.extract
        # An image holds the configured release; a jail's pinned other release is fetched.
        imported = [f"image_import:{plan.release}"] if (
            ctx.image_source and plan.release == ctx.config.release) else []
        if isinstance(want, PkgbaseInputs):
            conf = want.conf_text()
            yield step(ctx, f"write {want.conf_dir(ctx.zfs)}/FreeBSD-base.conf ({want.url})",
                       write_repo_conf, {"zfs": ctx.zfs, "want": want}, name=plan.release,
                       task_dep=["host:datasets", *imported],
                       # pkg upgrade needs it too: also once the base is installed.
                       uptodate=[RepoConfWritten(ctx.zfs, want, conf)])
            continue
        yield step(ctx, f"download {plan.mirror_dir}/base.txz into {plan.media}",
                   _fetch, {"ctx": ctx, "plan": plan},
                   name=plan.release, task_dep=["host:datasets", *imported],
                   # Once the base is extracted (or imported) the archive is not needed.
                   uptodate=[AnyOf((ArchiveVerified(ctx.zfs, want.media, want.archive_name,
                                                    want.manifest_name),
                                    ctx.checks.stamp_is(want.base, want)))])


def _fetch(ctx: Context, plan: ReleasePlan) -> None:
    want = plan.extract
    fetch_release(plan.mirror_dir, ctx.zfs.directory(want.media), want.archive_name,
                  want.manifest_name)


def task_extract(ctx: Context) -> Iterator[dict[str, Any]]:
    """Unpack the verified base.txz into the release's base dataset with bsdtar (pkgbase:
    install the release's base package set into it with pkg)."""
    for plan in ctx.plan.releases():
        want = plan.extract
        if isinstance(want, PkgbaseInputs):
            yield step(ctx, f"pkg install {want.package_set} into {want.base}", install_base,
                       {"runner": ctx.runner, "zfs": ctx.zfs, "want": want},
                       name=plan.release, task_dep=[f"fetch:{plan.release}"],
                       made_from=(want,), uptodate=[ctx.checks.stamp_is(want.base, want)])
            continue
        yield step(ctx, f"extract {want.archive_name} into {want.base}", extract_base,
                   {"runner": ctx.runner, "zfs": ctx.zfs, "want": want}, name=plan.release,
                   task_dep=[f"fetch:{plan.release}"], made_from=(want,),
                   uptodate=[ctx.checks.stamp_is(want.base, want)])


def task_tzdns(ctx: Context) -> Iterator[dict[str, Any]]:
    """Set the template's time zone (a link into the base) and copy resolv.conf into its etc."""
    for plan in ctx.plan.releases():
        want = plan.tzdns
        yield step(ctx, f"set time zone {want.timezone} and copy {want.resolv_conf} into the "
                   f"{plan.release} template", copy_tz_dns, {"zfs": ctx.zfs, "want": want},
                   name=plan.release, task_dep=[f"extract:{plan.release}"], made_from=(want,),
                   uptodate=[ctx.checks.stamp_is(want.base, want)])


def task_update(ctx: Context) -> Iterator[dict[str, Any]]:
    """Patch the base with freebsd-update; record its patch level and end-of-life state.

    Past the first build a new level is made beside the current one, never in it."""
    for plan in ctx.plan.releases():
        want = plan.update
        doc = (f"make {plan.release} {want.new_level} beside {want.base}: clone it, "
               f"{want.tool} the clone, make it read-only" if want.new_level
               else f"{want.tool} {want.base} to patch level {want.patch}")
        yield step(ctx, doc,
                   update_base, {"runner": ctx.runner, "zfs": ctx.zfs, "offers": ctx.offers,
                                 "target": want},
                   name=plan.release, task_dep=[f"tzdns:{plan.release}"],
                   uptodate=[ctx.checks.base_updated(want)])


def task_skeleton(ctx: Context) -> Iterator[dict[str, Any]]:
    """Move etc, root, tmp, var, usr/local, home into the skeleton; link them from the base."""
    for plan in ctx.plan.releases():
        want = plan.split
        yield step(ctx, f"split {want.skeleton} off {want.base}", split_skeleton,
                   {"runner": ctx.runner, "zfs": ctx.zfs, "want": want}, name=plan.release,
                   # The first patch update also patches etc and var: it runs before the split.
                   task_dep=[f"update:{plan.release}"], made_from=(want,),
                   uptodate=[ctx.checks.stamp_is(want.base, want, plan.current_base),
                             ctx.checks.stamp_is(want.skeleton, want, plan.current_skeleton)])


def task_certs(ctx: Context) -> Iterator[dict[str, Any]]:
    """Repair the relative links (etc/ssl/certs) that the skeleton split broke."""
    for plan in ctx.plan.releases():
        want = plan.certs
        yield step(ctx, f"repair moved symlinks in {want.skeleton}", repair_links,
                   {"zfs": ctx.zfs, "want": want}, name=plan.release,
                   task_dep=[f"skeleton:{plan.release}"], made_from=(want,),
                   uptodate=[ctx.checks.stamp_is(want.skeleton, want, plan.current_skeleton)])


def task_snapshot(ctx: Context) -> Iterator[dict[str, Any]]:
    """Snapshot the finished skeleton under a content-named snapshot; new jails clone it."""
    for plan in ctx.plan.releases():
        yield step(ctx, f"snapshot {plan.current_snapshot(ctx.zfs)}", _snapshot,
                   {"ctx": ctx, "plan": plan}, name=plan.release,
                   task_dep=[f"certs:{plan.release}", f"tzdns:{plan.release}"],
                   uptodate=[SnapshotTaken(ctx.zfs, plan)])


def _snapshot(ctx: Context, plan: ReleasePlan) -> None:
    snapshot_skeleton(ctx.zfs, plan.current_snapshot(ctx.zfs))
