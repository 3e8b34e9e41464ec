"""The objects one thinjail run shares: config, command runner, ZFS state, running jails."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.checks import Checks
from tasks.config import Config, load_config, machine_of, valid_image_source
from tasks.errors import ConfigError
from tasks.host_state import HostInterfaces, OfferRecord, RunningJails
from tasks.plan import Planner
from tasks.runner import HOST_ZFS_LOCK, Runner
from tasks.state_dir import StateDir
from tasks.steps.update import eol_warning, host_machine
from tasks.zfs import Zfs

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@dataclass
class Context:
    """A run's services, shared by every task generator: the config, the command runner, ZFS
    access, the host-state readers, the state directory with its records, and the plan and
    the live checks built on them."""

    config: Config
    runner: Runner
    zfs: Zfs
    running: RunningJails
    interfaces: HostInterfaces
    state: StateDir
    offers: OfferRecord
    plan: Planner
    checks: Checks
    templates_dir: Path = TEMPLATES_DIR
    image_dir: Path | None = None  # where `doit image` writes (default: in the media dataset)
    image_source: str | None = None  # an image to import instead of building the templates

    def prefetch(self) -> None:
        """Ask the host which jails run and which interfaces exist in the background, while
        the task graph is built; a run checks both."""
        self.running.prefetch()
        self.interfaces.prefetch()

    def warnings(self) -> list[str]:
        """What an admin must hear on every run: releases in use past their end of life."""
        return [eol_warning(plan.release, since) for plan in self.plan.releases()
                if (since := self.zfs.stamp(plan.base, "eol"))]


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
    state = StateDir.of(Path(state_of) if state_of else config_path)
    state.path.mkdir(parents=True, exist_ok=True)
    runner = Runner(log_path=state.commands_log, dry_run=dry_run, zfs_lock=HOST_ZFS_LOCK)
    zfs = Zfs(runner, config.zfs_root, state.zfs_generation)
    offers = OfferRecord(state.patch_offers, 0 if check_updates else config.update_check)
    return Context(config=config, runner=runner, zfs=zfs, running=RunningJails(runner),
                   interfaces=HostInterfaces(runner), state=state, offers=offers,
                   plan=Planner(config, zfs), checks=Checks(zfs, runner, offers, state.inputs),
                   image_dir=Path(image_dir) if image_dir else None,
                   image_source=image or config.image)
