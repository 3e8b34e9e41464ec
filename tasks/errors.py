"""Errors thinjail reports to the user as one clear message (never a traceback)."""

from __future__ import annotations


class ThinjailError(Exception):
    """A failure with a message meant for the admin: what failed and what to do."""


class ConfigError(ThinjailError):
    """config.yaml is invalid; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class CommandError(ThinjailError):
    """An external command is missing or failed."""


def last_lines(text: str, count: int = 3) -> str:
    """The end of a command's output, where tools put their error, as one line."""
    return " / ".join(text.strip().splitlines()[-count:])


def one_line(error: Exception) -> str:
    """What the admin reads: a ThinjailError's message; for an OSError, the path (both paths
    of a rename) and the system's words, such as `/etc/x: No such file or directory`."""
    if not isinstance(error, OSError):
        return str(error)
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    reason = error.strerror or str(error)
    return f"{' -> '.join(paths)}: {reason}" if paths else reason
