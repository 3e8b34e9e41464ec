"""The objects one thinjail run shares: config, command runner, ZFS state, running jails."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from tasks.checks import BaseUpdated, StampIs
from tasks.config import Config, load_config, machine_of, valid_image_source
from tasks.errors import ConfigError
from tasks.host_state import HostInterfaces, OfferRecord, RunningJails
from tasks.inputs import Inputs, InputsRecord
from tasks.plan import (
    JailFiles,
    JailPlan,
    ReleasePlan,
    containers_dataset,
    jail_release,
    trash_dataset,
)
from tasks.runner import HOST_ZFS_LOCK, Runner
from tasks.steps.render import is_managed
from tasks.steps.update import eol_warning, host_machine
from tasks.zfs import Zfs

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def state_dir_for(config_path: Path) -> Path:
    """doit's state and the command log belong to the config, not to the checkout."""
    return config_path.resolve().parent / f".{config_path.stem}.thinjail"


@dataclass
class Context:
    config: Config
    runner: Runner
    zfs: Zfs
    running: RunningJails
    interfaces: HostInterfaces
    state_dir: Path
    offers: OfferRecord
    templates_dir: Path = TEMPLATES_DIR
    image_dir: Path | None = None  # where `doit image` writes (default: in the media dataset)
    image_source: str | None = None  # an image to import instead of building the templates
    _release_plans: dict[str, ReleasePlan] = field(default_factory=dict, repr=False)

    def prefetch(self) -> None:
        """Ask the host which jails run and which interfaces exist in the background, while
        the task graph is built; a run checks both."""
        self.running.prefetch()
        self.interfaces.prefetch()

    @property
    def inputs_record(self) -> InputsRecord:
        return InputsRecord(self.state_dir / "inputs")

    def stamp_is(self, dataset: str, key: str, wanted: Inputs) -> StampIs:
        """The check that dataset carries the stamp of `wanted`."""
        return StampIs(self.zfs, dataset, key, wanted, self.inputs_record)

    @property
    def rc_conf_lock(self) -> Path:
        return self.state_dir / "rc.conf.lock"

    @property
    def root_mountpoint(self) -> Path:
        return self.zfs.mountpoint(self.config.zfs_root)

    @cached_property
    def _jail_plans(self) -> list[JailPlan]:
        root = self.root_mountpoint
        plans = []
        for jail in self.config.jails:
            existing = self.zfs.get(f"{self.containers}/{jail.name}")
            release = jail_release(self.config, jail, existing.origin if existing else None)
            plans.append(JailPlan(self.config, jail, self.release_plan(release), root))
        return plans

    def release_plan(self, release: str) -> ReleasePlan:
        """The plan of one release, built once per run (its stamps read host files)."""
        if release not in self._release_plans:
            self._release_plans[release] = ReleasePlan(self.config, release)
        return self._release_plans[release]

    def jail_plans(self) -> list[JailPlan]:
        """Each jail with the release it mounts, decided once per run from the config and the
        origins of existing clones."""
        return self._jail_plans

    @cached_property
    def _update_checks(self) -> dict[str, BaseUpdated]:
        return {plan.release: BaseUpdated(self.zfs, self.runner, self.offers, plan.update_target)
                for plan in self.release_plans()}

    def base_updated(self, release: str) -> BaseUpdated:
        """The one check per release of "the base has the wanted patch level"."""
        return self._update_checks[release]

    @property
    def containers(self) -> str:
        return containers_dataset(self.config)

    @property
    def trash(self) -> str:
        return trash_dataset(self.config)

    def started_record(self, name: str) -> Path:
        return self.state_dir / "started" / name

    def jail_files(self, name: str) -> JailFiles:
        """Where a jail's dataset and files are, configured or not."""
        return JailFiles(self.config, name, self.root_mountpoint)

    def orphans(self) -> list[str]:
        """Jails thinjail made that config.yaml no longer names: a dataset under containers
        or a managed jail.conf.d file. They are reported, never removed by a run."""
        return self._orphans

    @cached_property
    def _orphans(self) -> list[str]:
        configured = {jail.name for jail in self.config.jails}
        found = set(self.zfs.children(self.containers))
        conf_d = self.config.paths.jail_conf_d
        if conf_d.is_dir():
            found |= {path.stem for path in conf_d.glob("*.conf") if is_managed(path)}
        return sorted(found - configured)

    def warnings(self) -> list[str]:
        """What an admin must hear on every run: releases in use past their end of life."""
        return [eol_warning(plan.release, since) for plan in self.release_plans()
                if (since := self.zfs.stamp(plan.base, "eol"))]

    def release_plans(self) -> list[ReleasePlan]:
        """The configured release and every release a jail mounts, each built once."""
        releases = {self.config.release, *(p.release.release for p in self.jail_plans())}
        return [self.release_plan(release) for release in sorted(releases)]


def load_context(config_path: Path, dry_run: bool = False, image_dir: str | None = None,
                 image: str | None = None, check_updates: bool = False,
                 state_of: str | None = None) -> Context:
    """Validate the config and the command line (before any command runs), then set up the
    run's objects. `check_updates` asks freebsd-update now, however recent its last answer;
    `state_of` (dry-run only) plans a proposed config against the state of the one in use."""
    config = load_config(config_path)
    if config.patch == "latest" and machine_of(config.arch) != host_machine():
        raise ConfigError([f"{config_path}: arch: {config.arch} is not this host's "
                           f"architecture ({host_machine()}), and freebsd-update installs the "
                           "host's own files, which would break the templates: pin a patch "
                           "level such as p0, or build on a host of that architecture"])
    if image is not None and not valid_image_source(image):
        raise ConfigError([f"image={image}: not an absolute path or an http(s)/file URL"])
    if image_dir is not None and not image_dir.startswith("/"):
        raise ConfigError([f"image_dir={image_dir}: use an absolute path"])
    if state_of is not None and not dry_run:
        raise ConfigError([f"state_of={state_of}: only with dry_run=1 (a real run keeps the "
                           "state of its own config)"])
    state_dir = state_dir_for(Path(state_of) if state_of else config_path)
    state_dir.mkdir(parents=True, exist_ok=True)
    runner = Runner(log_path=state_dir / "commands.log", dry_run=dry_run, zfs_lock=HOST_ZFS_LOCK)
    zfs = Zfs(runner, config.zfs_root, state_dir / "zfs.generation")
    return Context(config=config, runner=runner, zfs=zfs, running=RunningJails(runner),
                   interfaces=HostInterfaces(runner), state_dir=state_dir,
                   offers=OfferRecord(state_dir / "patch-offers.json",
                                      0 if check_updates else config.update_check),
                   image_dir=Path(image_dir) if image_dir else None,
                   image_source=image or config.image)
