"""Live up-to-date checks for doit's `uptodate`: each looks at the host (ZFS state, files),
never only at doit's state file, and says in its repr what it checks (`doit info` shows it)."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tasks.errors import ThinjailError
from tasks.host_state import HostInterfaces, Offer, OfferRecord, RunningJails, StartInputs
from tasks.inputs import InputsRecord, StepInputs
from tasks.plan import ReleasePlan
from tasks.runner import Runner
from tasks.steps.datasets import is_private
from tasks.steps.fetch import is_verified
from tasks.steps.network import bridge_has_uplink, bridge_persisted
from tasks.steps.pkgbase import PkgbaseInputs
from tasks.steps.rcconf import boot_settings, missing_settings
from tasks.steps.update import UpdateInputs
from tasks.zfs import Zfs


class LiveCheck:
    """A live check takes no arguments. doit asks each `uptodate` callable's signature on every
    run (for the `task` and `values` it may want); stating it here spares inspecting every
    check's __call__, hundreds at 100 jails."""

    __signature__ = inspect.Signature()


def answers(question: Callable[[], bool]) -> bool:
    """A check that asks a command (jls, ifconfig) is False when the command fails: the
    step then runs and fails with the full message, instead of doit aborting on a check."""
    try:
        return question()
    except ThinjailError:
        return False


@dataclass
class StampIs(LiveCheck):
    """The dataset carries the stamp of the step's current inputs; when not, `doit info`
    names the inputs that changed since the stamp it has."""

    zfs: Zfs
    dataset: str
    wanted: StepInputs  # the stamp's key is its step's name
    record: InputsRecord
    # A new patch level's dataset gets its stamps from the one it is cloned from: until the
    # update made it, that one answers (so `doit list` shows what will run).
    cloned_from: str | None = None

    def _had(self) -> str | None:
        dataset = self.dataset
        if self.cloned_from and not self.zfs.exists(dataset):
            dataset = self.cloned_from
        return self.zfs.stamp(dataset, self.wanted.STEP)

    def __call__(self) -> bool:
        return self._had() == self.wanted.stamp

    def __repr__(self) -> str:
        had = self._had()
        changed = "" if had == self.wanted.stamp else (
            f" ({self.record.changes(had, self.wanted)})")
        return f"<{self.dataset} has thinjail:{self.wanted.STEP}={self.wanted.stamp}{changed}>"


@dataclass
class BaseUpdated(LiveCheck):
    """The base carries the update stamp and, with `patch: latest`, the patch level and
    end-of-life state freebsd-update reports (Checks.offer). One object per release, shared
    by the update task and the jails on that base, so their restart shows as pending before
    the update ran."""

    zfs: Zfs
    checks: Checks
    target: UpdateInputs

    def __call__(self) -> bool:
        base = self.target.base
        if self.zfs.stamp(base, "update") != self.target.stamp:
            return False
        if self.target.patch != "latest":
            return True
        offer = self.checks.offer(self.target)
        if offer is None:
            return False  # the update step itself will fail with the full message
        return (self.zfs.stamp(base, "patch") == offer.level
                and self.zfs.stamp(base, "eol") == offer.eol)

    def __repr__(self) -> str:
        asked = self.checks.asked.get(self.target.release)
        when = "" if asked is None else time.strftime(" as of %Y-%m-%d %H:%M",
                                                      time.localtime(asked))
        offer = self.checks.offers_seen.get(self.target.release)
        available = offer.level if offer else None
        return (f"<{self.target.base} has thinjail:update={self.target.stamp} and the patch "
                f"level on offer (base at {self.zfs.stamp(self.target.base, 'patch')}, "
                f"available {available}{when})>")


class Checks:
    """The live checks tasks share, one object each: a jail's start and the update of its
    base ask the same BaseUpdated, so freebsd-update is asked once per release and run."""

    def __init__(self, zfs: Zfs, runner: Runner, offers: OfferRecord,
                 record: InputsRecord) -> None:
        self.zfs, self.runner, self.offers, self.record = zfs, runner, offers, record
        self._updated: dict[str, BaseUpdated] = {}
        self.offers_seen: dict[str, Offer | None] = {}  # per release, once per run
        self.asked: dict[str, float | None] = {}  # when the answer in use was given

    def offer(self, target: UpdateInputs) -> Offer | None:
        """What freebsd-update offers for the release: its recorded answer while fresh,
        else asked now and recorded; None when asking failed (the update step then fails
        with the full message). Asked once per release and run."""
        release = target.release
        if release not in self.offers_seen:
            offer, asked = self.offers.fresh(release) or (None, None)
            if offer is None:
                try:
                    offer = target.ask(self.runner, self.zfs)
                except ThinjailError:
                    offer = None
                else:
                    self.offers.record(release, offer)
            self.offers_seen[release], self.asked[release] = offer, asked
        return self.offers_seen[release]

    def stamp_is(self, dataset: str, wanted: StepInputs,
                 cloned_from: str | None = None) -> StampIs:
        """The dataset carries the stamp of `wanted` (or, while a new patch level is not
        made yet, the dataset it will be cloned from does)."""
        return StampIs(self.zfs, dataset, wanted, self.record, cloned_from)

    def base_updated(self, target: UpdateInputs) -> BaseUpdated:
        """The base of `target` is at the wanted patch level."""
        if target.release not in self._updated:
            self._updated[target.release] = BaseUpdated(self.zfs, self, target)
        return self._updated[target.release]


@dataclass
class AnyOf(LiveCheck):
    """Current when one of the checks is (doit itself requires all of them)."""

    checks: tuple[Callable[[], bool], ...]

    def __call__(self) -> bool:
        return any(check() for check in self.checks)

    def __repr__(self) -> str:
        return " or ".join(map(repr, self.checks))


@dataclass
class DatasetsExist(LiveCheck):
    zfs: Zfs
    names: tuple[str, ...]

    def __call__(self) -> bool:
        return all(self.zfs.exists(name) for name in self.names)

    def __repr__(self) -> str:
        return f"<datasets exist: {', '.join(self.names)}>"


@dataclass
class OursMounted(LiveCheck):
    zfs: Zfs

    def __call__(self) -> bool:
        return not self.zfs.unmounted_ours()

    def __repr__(self) -> str:
        return f"<every file system thinjail created under {self.zfs.root} is mounted>"


@dataclass
class SnapshotTaken(LiveCheck):
    """The skeleton's content-named snapshot exists, named as the skeleton is now."""

    zfs: Zfs
    release: ReleasePlan

    def __call__(self) -> bool:
        return self.zfs.exists(self.release.current_snapshot(self.zfs))

    def __repr__(self) -> str:
        return f"<{self.release.current_snapshot(self.zfs)} exists>"


@dataclass
class RepoConfWritten(LiveCheck):
    """The pkgbase repository conf of a release is the one the config makes."""

    zfs: Zfs
    want: PkgbaseInputs
    text: str

    def __call__(self) -> bool:
        if not self.zfs.exists(self.want.media):
            return False
        try:
            return (self.want.conf_dir(self.zfs) / "FreeBSD-base.conf").read_text() == self.text
        except FileNotFoundError:
            return False

    def __repr__(self) -> str:
        return f"<{self.want.conf_dir(self.zfs)}/FreeBSD-base.conf names {self.want.url}>"


@dataclass
class DatasetsPrivate(LiveCheck):
    zfs: Zfs
    names: tuple[str, ...]

    def __call__(self) -> bool:
        return all(self.zfs.exists(name) and is_private(self.zfs, name) for name in self.names)

    def __repr__(self) -> str:
        return f"<only root may enter the directories of {', '.join(self.names)} (mode 0700)>"


@dataclass
class ArchiveVerified(LiveCheck):
    """The archive in the media dataset is the one verified against its MANIFEST."""

    zfs: Zfs
    media: str
    archive: str
    manifest: str

    def __call__(self) -> bool:
        if not self.zfs.exists(self.media):
            return False
        directory = self.zfs.directory(self.media)
        return is_verified(directory / self.archive, directory / self.manifest)

    def __repr__(self) -> str:
        return f"<{self.media}/{self.archive} verified against {self.manifest}>"


@dataclass
class RcSettings(LiveCheck):
    rc_conf: Path
    wanted: Mapping[str, str]

    def __call__(self) -> bool:
        return not missing_settings(self.rc_conf, self.wanted)

    def __repr__(self) -> str:
        settings = " ".join(f"{k}={v}" for k, v in self.wanted.items())
        return f"<{self.rc_conf} sets {settings}>"


@dataclass
class BridgeReady(LiveCheck):
    interfaces: HostInterfaces
    rc_conf: Path
    bridge: str
    uplink: str | None

    def __call__(self) -> bool:
        return (answers(lambda: bridge_has_uplink(self.interfaces.answer(), self.bridge,
                                                  self.uplink))
                and bridge_persisted(self.rc_conf, self.bridge, self.uplink))

    def __repr__(self) -> str:
        member = f" with member {self.uplink}" if self.uplink else ""
        return (f"<bridge {self.bridge} exists{member} (ifconfig -a) and {self.rc_conf} "
                "creates it>")


@dataclass
class JailStopped(LiveCheck):
    running: RunningJails
    name: str

    def __call__(self) -> bool:
        return answers(lambda: self.name not in self.running.names())

    def __repr__(self) -> str:
        return f"<jail {self.name} is not running (jls)>"


@dataclass
class NoOrphans(LiveCheck):
    find: Callable[[], list[str]]

    def __call__(self) -> bool:
        return not self.find()

    def __repr__(self) -> str:
        return "<no jail datasets or jail.conf.d files that config.yaml does not name>"


@dataclass
class StartsAtBoot(LiveCheck):
    rc_conf: Path
    name: str
    conf: Path

    def __call__(self) -> bool:
        return not boot_settings(self.rc_conf, self.name, self.conf, ())

    def __repr__(self) -> str:
        return f"<jail_list in {self.rc_conf} names {self.name}, started from {self.conf}>"


@dataclass
class NotHeldBack(LiveCheck):
    """No failed move to a new patch level put the jail back (its fstab is rendered again,
    and the move tried again, when one did)."""

    name: str
    marker: Path

    def __call__(self) -> bool:
        return not self.marker.exists()

    def __repr__(self) -> str:
        return f"<jail {self.name} was not put back after a failed move ({self.marker})>"


@dataclass
class JailRunningCurrent(LiveCheck):
    running: RunningJails
    inputs: StartInputs

    def __call__(self) -> bool:
        return answers(lambda: self.inputs.current(self.running))

    def __repr__(self) -> str:
        return (f"<jail {self.inputs.name} runs (jls), started with the current "
                f"{self.inputs.conf.name}, fstab and base {self.inputs.base}>")
