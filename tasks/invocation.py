"""What one run was asked to do, every part checked before any command runs: the config and
doit's command-line variables. Light on imports, so that dodo.py can start ZFS's listing
right after it, while the rest of thinjail is imported (tasks/zfs.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.config import Config, host_machine, load_config, machine_of, valid_image_source
from tasks.config.model import LEVEL_PIN_RE
from tasks.errors import ConfigError
from tasks.runner import HOST_ZFS_LOCK, Runner
from tasks.state_dir import StateDir


@dataclass(frozen=True)
class Invocation:
    config: Config
    state: StateDir
    runner: Runner
    check_updates: bool = False  # ask freebsd-update now, however recent its last answer
    image_dir: Path | None = None  # where `doit image` writes (default: in the media dataset)
    image_source: str | None = None  # an image to import instead of building the templates
    rollback: frozenset[str] = frozenset()  # jails named by `doit rollback:<name>`
    image_level: str | None = None  # the level `doit image` exports (default: the current)
    status_json: bool = False  # `doit status format=json`: the status as JSON, for tools


def parse_invocation(config_path: Path, dry_run: bool = False, image_dir: str | None = None,
                     image: str | None = None, check_updates: bool = False,
                     state_of: str | None = None, tasks: tuple[str, ...] = (),
                     level: str | None = None, output_format: str = "table") -> Invocation:
    """Validate the config and the command line; raise ConfigError before any command runs.
    `state_of` (dry-run only) plans a proposed config against the state of the one in use.
    `tasks` are the command line's words: `rollback:<name>` changes how that jail moves."""
    config = load_config(config_path)
    if config.patch == "latest" and config.base_source == "base.txz" \
            and machine_of(config.arch) != host_machine():
        raise ConfigError([f"{config_path}: arch: {config.arch} is not this host's "
                           f"architecture ({host_machine()}), and freebsd-update installs the "
                           "host's own files, which would break the templates: pin a patch "
                           "level such as p0, or build on a host of that architecture"])
    if image is not None and not valid_image_source(image):
        raise ConfigError([f"image={image}: not an absolute path or an http(s)/file URL"])
    if level is not None and not LEVEL_PIN_RE.fullmatch(level):
        raise ConfigError([f"level={level}: name a patch level such as p3"])
    if image_dir is not None and not image_dir.startswith("/"):
        raise ConfigError([f"image_dir={image_dir}: use an absolute path"])
    if output_format not in ("table", "json"):
        raise ConfigError([f"format={output_format}: use table or json"])
    if state_of is not None and not dry_run:
        raise ConfigError([f"state_of={state_of}: only with dry_run=1 (a real run keeps the "
                           "state of its own config)"])
    state = StateDir.of(Path(state_of) if state_of else config_path)
    state.path.mkdir(parents=True, exist_ok=True)
    return Invocation(config=config, state=state,
                      runner=Runner(log_path=state.commands_log, dry_run=dry_run,
                                    zfs_lock=HOST_ZFS_LOCK),
                      check_updates=check_updates,
                      image_dir=Path(image_dir) if image_dir else None,
                      image_source=image or config.image,
                      image_level=level, status_json=output_format == "json",
                      rollback=frozenset(word.split(":", 1)[1] for word in tasks
                                         if word.startswith("rollback:")))
