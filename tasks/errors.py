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
