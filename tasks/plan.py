"""What the pipeline should produce for a config: dataset names, file paths and step stamps.

A stamp is a short digest of everything a step's result depends on; the step writes it to its
dataset last, and the step is current exactly when the dataset carries the stamp computed here.
Every stamp is computed from the config alone, so `doit list --status` can tell what is stale
without running anything but the one ZFS listing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from tasks.config import MIRROR_ARCH_DIRS, Config, Jail, release_major
from tasks.errors import ThinjailError
from tasks.host_state import Offer
from tasks.inputs import digest, file_digest
from tasks.steps.certs import CertsInputs
from tasks.steps.extract import ExtractInputs
from tasks.steps.levels import Level
from tasks.steps.pkgbase import PkgbaseInputs
from tasks.steps.provision import ProvisionInputs
from tasks.steps.render import is_managed
from tasks.steps.skeleton import SkeletonInputs
from tasks.steps.tzdns import HOST_LOCALTIME, TzDnsInputs
from tasks.steps.update import UpdateInputs
from tasks.zfs import Zfs

LEVEL_PATTERN = "p[0-9]+"  # a patch level as freebsd-update names it


@dataclass(frozen=True)
class ReleasePlan:
    """Datasets, files and step inputs of one release's templates. A patch level is a base
    and a skeleton: the first build's (`templates/<release>-base`, `-skeleton`), or a later
    one made beside the one before it (`templates/<release>/<level>-base`, ...), never
    changed once done. `level` is the release's current level (None: the first build's),
    `new_level` the one this run's update makes, if any. The steps up to the update work on
    the current level; the later ones, and the jails, on the level the run ends at. Built
    once per release and run (Planner.release): its inputs read host files."""

    config: Config
    release: str
    level: str | None = None
    new_level: str | None = None

    @property
    def source(self) -> str:
        """base.txz or pkgbase (tasks/steps/pkgbase.py)."""
        return self.config.source_of(self.release)

    @property
    def levels(self) -> str:
        """The dataset that holds the release's later levels."""
        return levels_dataset(self.config, self.release)

    def _dataset(self, level: str | None, role: str) -> str:
        if level:
            return f"{self.levels}/{level}-{role}"
        return f"{release_stem(self.config, self.release)}-{role}"

    @property
    def base(self) -> str:
        """The base of the level the run ends at, which jails mount."""
        return self._dataset(self.new_level or self.level, "base")

    @property
    def skeleton(self) -> str:
        return self._dataset(self.new_level or self.level, "skeleton")

    @property
    def current_base(self) -> str:
        return self._dataset(self.level, "base")

    @property
    def current_skeleton(self) -> str:
        return self._dataset(self.level, "skeleton")

    @property
    def media(self) -> str:
        return media_dataset(self.config)

    @property
    def mirror_dir(self) -> str:
        """URL of the release's directory on the mirror (holds base.txz and MANIFEST)."""
        arch_dirs = MIRROR_ARCH_DIRS[self.config.arch]
        return f"{self.config.mirror.rstrip('/')}/{arch_dirs}/{self.release}"

    @cached_property
    def extract(self) -> ExtractInputs | PkgbaseInputs:
        """What the base is made from: base.txz, or the release's base packages."""
        if self.source == "pkgbase":
            return self.packages
        return ExtractInputs(base=self.current_base, media=self.media,
                             archive_name=f"{self.release}-{self.config.arch}-base.txz",
                             manifest_name=f"{self.release}-{self.config.arch}-MANIFEST",
                             release=self.release, arch=self.config.arch)

    @cached_property
    def packages(self) -> PkgbaseInputs:
        """The release's base packages: the set, the repository and its keys."""
        config, major = self.config, release_major(self.release)
        minor = self.release.split("-", 1)[0].split(".")[1]
        return PkgbaseInputs(base=self.current_base, media=self.media, release=self.release,
                             arch=config.arch, package_set=config.pkgbase_set,
                             url=f"{config.pkgbase_mirror.rstrip('/')}/${{ABI}}/"
                                 f"base_release_{minor}",
                             signature=config.signature,
                             keys=config.pkgbase_keys or f"/usr/share/keys/pkgbase-{major}")

    @cached_property
    def tzdns(self) -> TzDnsInputs:
        zone, resolv_conf = self.config.timezone, self.config.resolv_conf
        return TzDnsInputs(base=self.current_base, skeleton=self.current_skeleton, timezone=zone,
                           resolv_conf=resolv_conf, extract=self.extract.stamp,
                           zone_file=file_digest(HOST_LOCALTIME) if zone == "host" else zone,
                           resolv_conf_content=file_digest(resolv_conf))

    @cached_property
    def update(self) -> UpdateInputs:
        return UpdateInputs(base=self.current_base, skeleton=self.current_skeleton,
                            levels=self.levels, new_level=self.new_level, media=self.media,
                            release=self.release, arch=self.config.arch,
                            extract=self.extract.stamp, patch=self.config.patch,
                            packages=self.packages if self.source == "pkgbase" else None)

    @cached_property
    def split(self) -> SkeletonInputs:
        return SkeletonInputs(base=self.base, skeleton=self.skeleton,
                              extract=self.extract.stamp)

    @cached_property
    def certs(self) -> CertsInputs:
        return CertsInputs(skeleton=self.skeleton, split=self.split.stamp)

    def snapshot(self, patched: str | None = None) -> str:
        """The skeleton snapshot new jails are cloned from. Its name carries the digest of
        everything in the skeleton, so a changed skeleton gets a new snapshot and jails
        cloned from an older one keep it as their origin. `patched` is the level a patch
        update brought the split skeleton's files to (none before any)."""
        content = digest(self.split.stamp, self.tzdns.stamp, self.certs.stamp,
                         *([patched] if patched else []))
        return f"{self.skeleton}@base-{content[:10]}"

    def current_snapshot(self, zfs: Zfs) -> str:
        """The snapshot for the skeleton as ZFS has it now (asked when a step runs: an
        update earlier in the run may have patched it)."""
        return self.snapshot(zfs.stamp(self.skeleton, "patched"))


def jail_release(config: Config, jail: Jail, origin: str | None) -> str:
    """The release whose base a jail mounts: its pin in the config; else the release it was
    cloned from, so a new global release never moves an existing jail; else the global one."""
    if jail.release:
        return jail.release
    match = re.fullmatch(rf"{re.escape(config.zfs_root)}/templates/([^/@]+?)(?:-pkgbase)?"
                         rf"(?:-skeleton|/{LEVEL_PATTERN}-skeleton)@[^@]+", origin or "")
    return match.group(1) if match else config.release


def release_stem(config: Config, release: str) -> str:
    """What a release's template datasets are named by: `templates/<release>`, and
    `templates/<release>-pkgbase` for one built from base packages, so that moving a
    release to pkgbase makes a new base beside the old one."""
    pkgbase = config.source_of(release) == "pkgbase"
    return f"{config.zfs_root}/templates/{release}{'-pkgbase' if pkgbase else ''}"


def levels_dataset(config: Config, release: str) -> str:
    return release_stem(config, release)


def level_number(level: str) -> int:
    return int(level[1:])


def release_levels(zfs: Zfs, config: Config, release: str) -> list[Level]:
    """The release's done levels, oldest first: the first build's once split, then each
    later one that carries the update stamp."""
    first = f"{release_stem(config, release)}-base"
    found = []
    if zfs.stamp(first, "skeleton"):
        name = zfs.stamp(first, "installed") or zfs.stamp(first, "patch") or "p0"
        found.append(Level(name, zfs.stamp(first, "patch") or name, first,
                           first.removesuffix("-base") + "-skeleton"))
    parent = levels_dataset(config, release)
    for child in zfs.children(parent):
        base = f"{parent}/{child}"
        if re.fullmatch(rf"{LEVEL_PATTERN}-base", child) and zfs.stamp(base, "update"):
            name = child.removesuffix("-base")
            found.append(Level(name, zfs.stamp(base, "patch") or name, base,
                               f"{parent}/{name}-skeleton"))
    return sorted(found, key=lambda level: level_number(level.name))


def level_of_base(zfs: Zfs, base: str) -> str:
    """The name of the level a base dataset holds (for a jail's `@pre-<level>` snapshot)."""
    match = re.search(rf"/({LEVEL_PATTERN})-base$", base)
    if match:
        return match.group(1)
    return zfs.stamp(base, "installed") or zfs.stamp(base, "patch") or "p0"


@dataclass(frozen=True)
class JailFiles:
    """Where one jail's dataset and host files are, by its name alone (so also for a jail
    config.yaml no longer names). `root_mountpoint` is the parent dataset's."""

    config: Config
    name: str
    root_mountpoint: Path

    @cached_property
    def container(self) -> str:
        return f"{containers_dataset(self.config)}/{self.name}"

    @cached_property
    def jail_root(self) -> Path:
        """The jail's `path`: a plain directory where the base is nullfs-mounted."""
        return self.root_mountpoint / f"{self.name}-nullfs-base"

    @cached_property
    def fstab(self) -> Path:
        return self.root_mountpoint / f"{self.name}-nullfs-base.fstab"

    @cached_property
    def conf(self) -> Path:
        return self.config.paths.jail_conf_d / f"{self.name}.conf"


@dataclass(frozen=True)
class JailPlan:
    """One configured jail: its files, the release it mounts, and the level's base and
    skeleton: the level the release's run ends at, or the one the jail's `patch:` pins."""

    config: Config
    jail: Jail
    release: ReleasePlan
    root_mountpoint: Path
    base: str
    skeleton: str

    @property
    def pinned(self) -> bool:
        """The jail's pin chose another level than the one the release's run ends at."""
        return self.base != self.release.base

    @cached_property
    def files(self) -> JailFiles:
        return JailFiles(self.config, self.jail.name, self.root_mountpoint)

    @property
    def container(self) -> str:
        return self.files.container

    @property
    def jail_root(self) -> Path:
        return self.files.jail_root

    @property
    def fstab(self) -> Path:
        return self.files.fstab

    @property
    def conf(self) -> Path:
        return self.files.conf

    @cached_property
    def provision(self) -> ProvisionInputs:
        jail = self.jail
        return ProvisionInputs(container=self.container, name=jail.name,
                               packages=jail.packages, services=jail.services)


class Planner:
    """What should exist for a config on this host: the plan of each release and of each jail
    (the release a jail mounts depends on its clone's origin), and where a jail's files are.
    Each plan is built once per run."""

    def __init__(self, config: Config, zfs: Zfs,
                 offer_of: Callable[[UpdateInputs], Offer | None],
                 image_level: Callable[[str], str] | None = None) -> None:
        self.config = config
        self.zfs = zfs
        self.offer_of = offer_of  # what freebsd-update offers for a base (Checks.offer)
        self.image_level = image_level  # the level the configured image holds, if any
        self._releases: dict[str, ReleasePlan] = {}
        self._imported: dict[str, str | None] = {}
        self._levels: dict[str, list[Level]] = {}

    @property
    def containers(self) -> str:
        return containers_dataset(self.config)

    @property
    def trash(self) -> str:
        return trash_dataset(self.config)

    @property
    def root_mountpoint(self) -> Path:
        return self.zfs.mountpoint(self.config.zfs_root)

    def release(self, release: str) -> ReleasePlan:
        """The release's plan: its current level (one an image brings, when newer), and the
        one this run makes."""
        if release not in self._releases:
            levels = self.levels(release)
            newest = levels[-1] if levels else None
            # None while only the first build's datasets exist.
            level = newest.name if newest and newest.base.startswith(
                f"{levels_dataset(self.config, release)}/") else None
            imported = self.imported_level(release)
            if imported and (newest is None or
                             level_number(imported) > level_number(newest.name)):
                level = imported
            plan = ReleasePlan(self.config, release, level)
            new_level = self._new_level(plan)
            self._releases[release] = replace(plan, new_level=new_level) if new_level else plan
        return self._releases[release]

    def levels(self, release: str) -> list[Level]:
        """The release's done levels, oldest first, as the run found them."""
        if release not in self._levels:
            self._levels[release] = release_levels(self.zfs, self.config, release)
        return self._levels[release]

    def imported_level(self, release: str) -> str | None:
        """The level the configured image brings beside the release's levels: one this
        host lacks (None without an image, for another release, or before a first build,
        which the image becomes)."""
        if release not in self._imported:
            found = None
            first = f"{release_stem(self.config, release)}-base"
            if self.image_level and release == self.config.release and self.zfs.exists(first):
                level = self.image_level(release)
                have = {name for lv in self.levels(release) for name in (lv.name, lv.patch)}
                found = None if level in have else level
            self._imported[release] = found
        return self._imported[release]

    def _new_level(self, plan: ReleasePlan) -> str | None:
        """The level this run's update will make: past the first build only (before its
        split, no jail mounts the base and it is updated in place), and only when
        freebsd-update has files to install (a kernel-only level changes no template)."""
        base = self.zfs.get(plan.current_base)
        if base is None or "skeleton" not in base.stamps:
            return None
        if self.config.patch == base.stamps.get("patch"):
            return None
        offer = self.offer_of(plan.update)
        if offer is None or not offer.pending or offer.level == base.stamps.get("patch"):
            return None
        return offer.level

    def releases(self) -> list[ReleasePlan]:
        """The configured release and every release a jail mounts."""
        names = {self.config.release, *(plan.release.release for plan in self.jails())}
        return [self.release(name) for name in sorted(names)]

    @cached_property
    def _jails(self) -> list[JailPlan]:
        root = self.root_mountpoint
        plans = []
        for jail in self.config.jails:
            existing = self.zfs.get(f"{self.containers}/{jail.name}")
            release = self.release(jail_release(self.config, jail,
                                                existing.origin if existing else None))
            base, skeleton = release.base, release.skeleton
            if jail.patch:
                base, skeleton = self._pinned_level(release, jail)
            plans.append(JailPlan(self.config, jail, release, root, base, skeleton))
        return plans

    def _pinned_level(self, release: ReleasePlan, jail: Jail) -> tuple[str, str]:
        """The base and skeleton of the level a jail's `patch:` pins; a level this host has
        no base for stops the run before any command."""
        levels = self.levels(release.release)
        for level in levels:
            if jail.patch in (level.name, level.patch):
                return level.base, level.skeleton
        if release.new_level == jail.patch:  # made by this run
            return release.base, release.skeleton
        have = ", ".join(level.name for level in levels) or "none yet"
        raise ThinjailError(f"{self.config.source.name}: jails.{jail.name}.patch: "
                            f"{release.release} has no base at {jail.patch} on this host (it "
                            f"has: {have}): pin one of those, or remove the pin")

    def jails(self) -> list[JailPlan]:
        """Each configured jail with the release it mounts."""
        return self._jails

    def jail_files(self, name: str) -> JailFiles:
        """Where a jail's dataset and files are, configured or not."""
        return JailFiles(self.config, name, self.root_mountpoint)

    @cached_property
    def _orphans(self) -> list[str]:
        configured = {jail.name for jail in self.config.jails}
        found = set(self.zfs.children(self.containers)) - configured
        conf_d = self.config.paths.jail_conf_d
        if conf_d.is_dir():  # only the files of unconfigured jails are read
            found |= {path.stem for path in conf_d.glob("*.conf")
                      if path.stem not in configured and is_managed(path)}
        return sorted(found)

    def orphans(self) -> list[str]:
        """Jails thinjail made that config.yaml no longer names: a dataset under containers
        or a managed jail.conf.d file. They are reported, never removed by a run."""
        return self._orphans


def media_dataset(config: Config) -> str:
    return f"{config.zfs_root}/media"


def containers_dataset(config: Config) -> str:
    return f"{config.zfs_root}/containers"


def trash_dataset(config: Config) -> str:
    """Where `doit destroy:<name>` moves a jail's dataset; `doit purge` empties it."""
    return f"{config.zfs_root}/trash"


def parent_datasets(config: Config) -> tuple[str, ...]:
    root = config.zfs_root
    return (root, media_dataset(config), f"{root}/templates", containers_dataset(config))


def private_datasets(config: Config) -> tuple[str, ...]:
    """Datasets whose directories unprivileged host users must not enter (jail(8) NOTES: a
    setuid binary a jail's root made would otherwise run on the host): the parent, where
    the jail roots are, and the containers, mounted elsewhere as the admin may choose."""
    return (config.zfs_root, containers_dataset(config))
