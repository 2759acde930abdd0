"""The ``hasten`` command. Thin: every command is a call into the library.

The command modules are listed in ``COMMAND_MODULES``; each exposes ``COMMANDS``, a list of
click commands. To add a command: write its module with ``COMMANDS = [...]``, add its name here. Errors the user can fix print one line and exit non-zero
(2 for bad input, 1 otherwise).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from hasten import __version__
from hasten.errors import HastenError


class HastenGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HastenError as exc:
            if not _echoed_by_rank_zero(exc):
                click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


def _echoed_by_rank_zero(exc: HastenError) -> bool:
    """Under torchrun, bad input is found by every process alike: only rank 0 prints the line."""
    import os

    from hasten.errors import ConfigError

    return isinstance(exc, ConfigError) and os.environ.get("RANK", "0") != "0"


@click.group(cls=HastenGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="hasten")
def cli() -> None:
    """hasten: make training faster, and prove it.

    \b
    Start with:   hasten demo                 (races a baseline against a faster recipe)
    Train:        hasten train toy --json
    Inspect:      hasten runs, hasten workloads, hasten methods
    """


COMMAND_MODULES: tuple[str, ...] = (
    "compare",
    "curve",
    "demo",
    "methods",
    "microbench",
    "profile",
    "prune",
    "recipes",
    "report",
    "runs",
    "train",
    "workloads",
)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        for command in importlib.import_module(f"hasten.cli.{name}").COMMANDS:
            cli.add_command(command)


_register_commands()


def main() -> None:
    cli(prog_name="hasten")


if __name__ == "__main__":
    main()
