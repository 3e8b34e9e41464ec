"""Starting, stopping and restarting a jail, always from its own jail.conf.d file, as rc.d/jail
does for `service jail start NAME` (`jail -f FILE -c NAME`).

`start` restarts (`-rc`) a running jail when what it was started with changed: its conf, its
fstab, or its base (the patch level whose files it holds, re-extraction). A jail that moved
to another base gets its trust store rebuilt inside it (`certctl rehash`). That is recorded as
a digest in thinjail's state directory; which jails run is asked from `jls` once per run.

Before a jail is created, two things a failed start or a wrong config leave behind are
dealt with:
- its devfs ruleset must be loaded: jail(8) gives a jail an unloaded ruleset as an empty
  one, and the jail then sees every device of the host;
- an `epair<id>a` left on the host: jail(8) does not run exec.poststop when a create fails
  after exec.prestart, so the epair prestart made stays, and every later create fails on
  it. One that is ours (described `jail:<name>`, its b end on the host, so no jail holds
  it) is destroyed; any other stops the start. A create that fails cleans up the same way.
Stopping runs the jail's exec.poststop hooks, which remove its epair, and does nothing for a
stopped jail.
"""

from __future__ import annotations

import time
from pathlib import Path

from tasks.errors import CommandError, ThinjailError
from tasks.files import write_atomic
from tasks.host_state import HostInterfaces, RunningJails, StartInputs, forget_start
from tasks.runner import Runner
from tasks.steps.etc_merge import EtcMerge, move_etc, restore_etc

STEP = "start"
DYING_POLL_SECONDS = 0.5


def require_ruleset(runner: Runner, jail: str, ruleset: int) -> None:
    shown = runner.run(["devfs", "rule", "-s", str(ruleset), "show"], step=STEP,
                       changes=False).stdout
    if not shown.strip():
        raise ThinjailError(
            f"{STEP}: devfs ruleset {ruleset} of jail {jail} is not loaded, and jail(8) would "
            f"give the jail every device of the host: define [name={ruleset}] in "
            "/etc/devfs.rules and run `service devfs restart`, or set devfs_ruleset to a "
            "loaded ruleset (5 is devfsrules_jail_vnet)")


def remove_leftover_epair(runner: Runner, interfaces: HostInterfaces, jail: str,
                          epair: str) -> bool:
    """Destroy the jail's epair if a failed start left it on the host; True if it did."""
    host = interfaces.answer()
    a_end, b_end = f"{epair}a", f"{epair}b"
    if a_end not in host:
        return False
    description = host[a_end].description
    if description != f"jail:{jail}":
        raise ThinjailError(
            f"{STEP}: {a_end} exists on the host and is not {jail}'s (its description is "
            f"{description!r}; thinjail describes it 'jail:{jail}'): remove it if it is a "
            f"leftover (`ifconfig {a_end} destroy`), or give {jail} another id")
    if b_end not in host:
        raise ThinjailError(f"{STEP}: {b_end}, the jail end of {jail}'s epair, is inside "
                            "another jail: stop that jail, or give this one another id")
    runner.run(["ifconfig", a_end, "destroy"], step=STEP)
    interfaces.invalidate()
    return True


def start_jail(runner: Runner, running: RunningJails, interfaces: HostInterfaces,
               inputs: StartInputs, always: bool = False, move: EtcMerge | None = None) -> None:
    """Start the jail, or restart it when it runs with other inputs (or `always`). A jail
    that moves to another base gets the new level's /etc changes first (`move`)."""
    name = inputs.name
    if inputs.current(running) and not always:
        return
    require_ruleset(runner, name, inputs.devfs_ruleset)
    moved = _moved(inputs)
    if moved and move is not None:
        move_etc(runner, inputs.zfs, move)
    # A running jail not started with these inputs (or by thinjail) is restarted with them.
    action = "-rc" if name in running.names() else "-c"
    if action == "-c":
        remove_leftover_epair(runner, interfaces, name, inputs.epair)
    failed = _jail(runner, running, interfaces, inputs, action)
    if failed is not None and moved:  # also -c: a run cut off after -rc left it stopped
        _put_back(runner, running, interfaces, inputs, failed)
    if failed is not None:
        raise failed
    if moved:
        _rehash(runner, name)
    _keep(inputs)


def _rehash(runner: Runner, name: str) -> None:
    """Rebuild the trust store in a jail that moved to another base: its /etc/ssl/certs is
    its own, and the base's trusted certificates (/usr/share/certs) changed under it. Until
    this succeeds the jail counts as not started with its inputs, so the next run restarts
    it and tries again."""
    try:
        runner.run(["jexec", name, "/usr/sbin/certctl", "rehash"], step=STEP)
    except CommandError as error:
        raise ThinjailError(f"{STEP}: {name} runs on its new base, but rebuilding its trust "
                            f"store failed ({error}); the next run restarts it and tries "
                            "again") from error


def _jail(runner: Runner, running: RunningJails, interfaces: HostInterfaces,
          inputs: StartInputs, action: str) -> CommandError | None:
    """`jail -f <conf> <action> <name>`; the error, with the epair a failed create left
    removed."""
    name = inputs.name
    try:
        runner.run(["jail", "-f", str(inputs.conf), action, name], step=STEP)
        failed = None
    except CommandError as error:
        failed = error
    running.invalidate()  # jls and ifconfig answer anew, whatever jail(8) managed to do
    interfaces.invalidate()
    if failed is not None and name not in running.names() and \
            remove_leftover_epair(runner, interfaces, name, inputs.epair):
        return CommandError(f"{failed} (the {inputs.epair} it left was removed)")
    return failed


def _moved(inputs: StartInputs) -> bool:
    """The jail ran with another fstab (another base: a move to a new patch level)."""
    try:
        return inputs.kept_fstab.read_bytes() != inputs.fstab.read_bytes()
    except FileNotFoundError:
        return False


def _put_back(runner: Runner, running: RunningJails, interfaces: HostInterfaces,
              inputs: StartInputs, failed: CommandError) -> None:
    """A jail that does not start on its new base is started again on the one it ran on,
    with its /etc as it was, and held back until the next run; the run stops here, naming
    it."""
    # Held back first: a run cut off from here on leaves the mark, so the next run renders
    # the new fstab again and retries, instead of taking the old one for the wanted one.
    write_atomic(inputs.held_back, b"")
    write_atomic(inputs.fstab, inputs.kept_fstab.read_bytes())
    restore_etc(inputs.zfs, inputs.etc_backup)
    again = _jail(runner, running, interfaces, inputs, "-c")
    if again is not None:
        raise ThinjailError(f"{failed}; starting {inputs.name} again on the base it ran on "
                            f"failed too: {again}")
    _keep(inputs, moved=False)
    raise ThinjailError(f"{STEP}: {inputs.name} did not start on its new base ({failed}); it "
                        "is back on the base it ran on, and runs. The rollout stops here; "
                        "the next run tries again")


def _keep(inputs: StartInputs, moved: bool = True) -> None:
    """Record what the jail now runs with. Once it runs where it moved, the move's record
    (its /etc backup) is not needed any more; a jail put back keeps it, so the retry takes
    no second snapshot."""
    inputs.record.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(inputs.kept_fstab, inputs.fstab.read_bytes())
    write_atomic(inputs.record, inputs.digest().encode())
    if moved:
        inputs.etc_backup.unlink(missing_ok=True)


def wait_until_gone(runner: Runner, name: str, step: str, timeout: float = 60) -> None:
    """Wait while the removed jail is dying (`jls -d` still lists it: TCP connections in
    TIME_WAIT and the like hold it), so that what it held is free for the next step."""
    deadline = time.monotonic() + timeout
    while runner.run(["jls", "-d", "-j", name, "jid"], step=step, changes=False,
                     ok_codes=(0, 1)).returncode == 0:
        if time.monotonic() > deadline:
            raise ThinjailError(f"{step}: jail {name} is stopped but still dying after "
                                f"{timeout:g} s (something holds it, such as TCP connections "
                                f"in TIME_WAIT); rerun `doit {step}:{name}` later")
        time.sleep(DYING_POLL_SECONDS)


def stop_jail(runner: Runner, running: RunningJails, conf: Path, record: Path,
              name: str) -> None:
    """Stop the jail if it runs (its exec.poststop hooks remove its epair)."""
    if name in running.names():
        runner.run(["jail", "-f", str(conf), "-r", name], step="stop")
        running.invalidate()
    forget_start(record)
