"""Rendering of the host files thinjail owns: jail.conf, jail.conf.d/<name>.conf, fstab.

A file is only ever replaced if it carries thinjail's marker line, so an admin's own
jail.conf is never overwritten by surprise.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

from tasks.errors import ThinjailError
from tasks.files import write_atomic

MARKER = "# Managed by thinjail"
# Every value goes unescaped into a jail.conf string (where `"`, `\\` and `$` mean something)
# or an fstab field (split at blanks, `#` starts a comment): allow only plain characters.
SAFE_VALUE_RE = re.compile(r"^[A-Za-z0-9_./+:@,=-]*$")


def _checked(value: object) -> str:
    """Jinja's finalize: every `{{ value }}` of every template passes here."""
    text = str(value)
    if text != MARKER and not SAFE_VALUE_RE.fullmatch(text):
        raise ThinjailError(f"render: {text!r} cannot go into jail.conf or fstab unquoted: use "
                            "letters, digits and ._+:@,=-/ (a mountpoint, a name)")
    return text


def environment(templates_dir: Path) -> jinja2.Environment:
    import jinja2  # here, not at the top: a no-op run renders nothing and skips its import

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dir),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False,
                             finalize=_checked)
    return env


def render(templates_dir: Path, template: str, **values: Any) -> str:
    return environment(templates_dir).get_template(template).render(marker=MARKER, **values)


def is_managed(path: Path) -> bool:
    """path is a file thinjail wrote (its first line is the marker)."""
    try:
        with path.open(errors="replace") as f:
            return f.readline().startswith(MARKER)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False


def write_managed(path: Path, text: str, step: str) -> None:
    """Write a file thinjail owns; refuse to replace a file somebody else wrote."""
    if path.exists() and not is_managed(path):
        raise ThinjailError(f"{step}: {path} exists and was not written by thinjail: move it "
                            "away (or point `paths` elsewhere) and rerun")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode())
