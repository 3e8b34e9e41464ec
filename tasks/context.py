"""The objects one thinjail run shares: config, command runner, ZFS state, running jails."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tasks.checks import Checks
from tasks.config import Config
from tasks.host_state import HostInterfaces, OfferRecord, RunningJails
from tasks.invocation import Invocation
from tasks.plan import Planner
from tasks.runner import Runner
from tasks.state_dir import StateDir
from tasks.steps.etc_merge import EtcMerge
from tasks.steps.image import image_level
from tasks.steps.update import eol_warning
from tasks.zfs import ListingAhead, Zfs

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
    rollback: frozenset[str] = frozenset()  # jails named by `doit rollback:<name>`
    image_export_level: str | None = None  # the level `doit image` exports (`level=`)
    status_json: bool = False  # `doit status format=json`
    # Each moving jail's move, worked out once per run (tasks/graph/jails.py).
    moves: dict[str, tuple[bool, EtcMerge | None]] = field(default_factory=dict)

    def prefetch(self) -> None:
        """Ask the host which jails run and which interfaces exist in the background, while
        the task graph is built; a run checks both."""
        self.running.prefetch()
        self.interfaces.prefetch()

    def warnings(self) -> list[str]:
        """What an admin must hear on every run: releases in use past their end of life."""
        return [eol_warning(plan.release, since) for plan in self.plan.releases()
                if (since := self.zfs.stamp(plan.base, "eol"))]


def load_context(run: Invocation, listing: ListingAhead | None = None) -> Context:
    """Set up the run's objects for a checked invocation; `listing` is the ZFS listing
    started as soon as the config named the parent dataset."""
    config, state = run.config, run.state
    zfs = Zfs(run.runner, config.zfs_root, state.zfs_generation, listing)
    offers = OfferRecord(state.patch_offers, 0 if run.check_updates else config.update_check)
    checks = Checks(zfs, run.runner, offers, state.inputs)
    source = run.image_source

    def level_of_image(release: str) -> str:  # asked only once the release has templates
        return image_level(str(source), release, config.arch)

    return Context(config=config, runner=run.runner, zfs=zfs, running=RunningJails(run.runner),
                   interfaces=HostInterfaces(run.runner), state=state, offers=offers,
                   plan=Planner(config, zfs, checks.offer, level_of_image if source else None),
                   checks=checks, image_dir=run.image_dir, image_source=source,
                   rollback=run.rollback, image_export_level=run.image_level,
                   status_json=run.status_json)
