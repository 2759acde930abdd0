"""Errors that reach users: each names the problem and the fix in one line.

The CLI prints ``str(error)`` and exits with ``error.exit_code``; library users
catch ``HastenError``. Keep messages to one line so they survive logs and pipes.
"""

from __future__ import annotations


class HastenError(Exception):
    """Base class: a problem the user can fix. ``hint`` says how."""

    exit_code = 1

    def __init__(self, problem: str, hint: str | None = None) -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(f"{problem} ({hint})" if hint else problem)


class ConfigError(HastenError, ValueError):
    """Bad input: unknown name, malformed duration, bad ``k=v``. CLI exit code 2."""

    exit_code = 2


class ConflictError(ConfigError):
    """Two speedup methods that cannot run together."""


class DataError(HastenError):
    """Missing, corrupt or unverifiable data files."""


class CheckpointError(HastenError):
    """A checkpoint that cannot be read or does not fit the run."""


class StoreError(HastenError):
    """The run store cannot be opened or holds no such run."""
