"""What the pipeline should produce for a config: dataset names, file paths and step stamps.

A stamp is a short digest of everything a step's result depends on; the step writes it to its
dataset last, and the step is current exactly when the dataset carries the stamp computed here.
Every stamp is computed from the config alone, so `doit list --status` can tell what is stale
without running anything but the one ZFS listing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from tasks.config import MIRROR_ARCH_DIRS, Config, Jail
from tasks.inputs import Inputs, digest, file_digest, inputs
from tasks.steps.update import UpdateTarget

# The writable, per-jail parts of a FreeBSD tree, moved from the base into the skeleton; the
# optional ones are created empty in the skeleton when base.txz has none. Changing these
# changes the skeleton stamp.
SPLIT_DIRS = ("etc", "root", "tmp", "var")
OPTIONAL_SPLIT_DIRS = ("usr/local", "home")
# Bumped when a step's implementation changes what it produces.
STEP_VERSIONS = {"extract": 1, "tzdns": 2, "update": 1, "skeleton": 1, "certs": 1}
HOST_LOCALTIME = Path("/etc/localtime")


@dataclass(frozen=True)
class ReleasePlan:
    """Datasets, files and stamps of one release's templates."""

    config: Config
    release: str

    @property
    def base(self) -> str:
        return f"{self.config.zfs_root}/templates/{self.release}-base"

    @property
    def skeleton(self) -> str:
        return f"{self.config.zfs_root}/templates/{self.release}-skeleton"

    @property
    def media(self) -> str:
        return media_dataset(self.config)

    @property
    def mirror_dir(self) -> str:
        """URL of the release's directory on the mirror (holds base.txz and MANIFEST)."""
        arch_dirs = MIRROR_ARCH_DIRS[self.config.arch]
        return f"{self.config.mirror.rstrip('/')}/{arch_dirs}/{self.release}"

    @property
    def archive_name(self) -> str:
        return f"{self.release}-{self.config.arch}-base.txz"

    @property
    def manifest_name(self) -> str:
        return f"{self.release}-{self.config.arch}-MANIFEST"

    @property
    def extract_inputs(self) -> Inputs:
        return inputs(step="extract", version=STEP_VERSIONS["extract"], release=self.release,
                      arch=self.config.arch)

    @property
    def extract_stamp(self) -> str:
        return self.extract_inputs.stamp

    @cached_property  # reads host files: once per plan
    def tzdns_inputs(self) -> Inputs:
        zone = self.config.timezone
        return inputs(step="tzdns", version=STEP_VERSIONS["tzdns"], extract=self.extract_stamp,
                      timezone=zone,
                      zone_file=file_digest(HOST_LOCALTIME) if zone == "host" else zone,
                      resolv_conf=file_digest(self.config.resolv_conf))

    @property
    def tzdns_stamp(self) -> str:
        return self.tzdns_inputs.stamp

    @property
    def update_stamp(self) -> str:
        return inputs(step="update", version=STEP_VERSIONS["update"],
                      extract=self.extract_stamp, patch=self.config.patch).stamp

    @property
    def update_target(self) -> UpdateTarget:
        return UpdateTarget(base=self.base, media=self.media, release=self.release,
                            arch=self.config.arch, patch=self.config.patch,
                            stamp=self.update_stamp)

    @property
    def skeleton_inputs(self) -> Inputs:
        return inputs(step="skeleton", version=STEP_VERSIONS["skeleton"],
                      extract=self.extract_stamp, split=SPLIT_DIRS,
                      split_if_present=OPTIONAL_SPLIT_DIRS)

    @property
    def skeleton_stamp(self) -> str:
        return self.skeleton_inputs.stamp

    @property
    def certs_inputs(self) -> Inputs:
        return inputs(step="certs", version=STEP_VERSIONS["certs"],
                      skeleton=self.skeleton_stamp)

    @property
    def certs_stamp(self) -> str:
        return self.certs_inputs.stamp

    @cached_property
    def snapshot(self) -> str:
        """The skeleton snapshot new jails are cloned from. Its name carries the digest of
        everything in the skeleton, so a changed skeleton gets a new snapshot and jails
        cloned from an older one keep it as their origin."""
        content = digest(self.skeleton_stamp, self.tzdns_stamp, self.certs_stamp)
        return f"{self.skeleton}@base-{content[:10]}"


def jail_release(config: Config, jail: Jail, origin: str | None) -> str:
    """The release whose base a jail mounts: its pin in the config; else the release it was
    cloned from, so a new global release never moves an existing jail; else the global one."""
    if jail.release:
        return jail.release
    match = re.fullmatch(rf"{re.escape(config.zfs_root)}/templates/(.+)-skeleton@[^@]+",
                         origin or "")
    return match.group(1) if match else config.release


@dataclass(frozen=True)
class JailFiles:
    """Where one jail's dataset and host files are, by its name alone (so also for a jail
    config.yaml no longer names). `root_mountpoint` is the parent dataset's."""

    config: Config
    name: str
    root_mountpoint: Path

    @property
    def container(self) -> str:
        return f"{containers_dataset(self.config)}/{self.name}"

    @property
    def jail_root(self) -> Path:
        """The jail's `path`: a plain directory where the base is nullfs-mounted."""
        return self.root_mountpoint / f"{self.name}-nullfs-base"

    @property
    def fstab(self) -> Path:
        return self.root_mountpoint / f"{self.name}-nullfs-base.fstab"

    @property
    def conf(self) -> Path:
        return self.config.paths.jail_conf_d / f"{self.name}.conf"


@dataclass(frozen=True)
class JailPlan:
    """One configured jail: its files and the release it mounts."""

    config: Config
    jail: Jail
    release: ReleasePlan
    root_mountpoint: Path

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
