"""Workload tests (and data tests, which import this fixture) share one decode cache per session."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A per-session ``XDG_CACHE_HOME``: decoded CIFAR-10 lands here once and is reused by every test
    that loads it, and nothing is written to the user's real cache."""
    root = tmp_path_factory.getbasetemp() / "hasten-session-cache"
    root.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(root))
        yield root / "hasten"


@pytest.fixture
def cli_train(tmp_path: Path, data_dir: Path, session_cache: Path):  # type: ignore[no-untyped-def]
    """Run ``hasten train WORKLOAD --duration D --json`` on the real data; return (summary, logged losses)."""
    import json
    import re

    from click.testing import CliRunner

    from hasten.cli.main import cli

    def train(workload: str, duration: str, *extra: str) -> tuple[dict, list[float]]:
        args = [
            "train",
            workload,
            "--duration",
            duration,
            "--data-dir",
            str(data_dir),
            "--device",
            "cpu",
            "--store",
            str(tmp_path / "runs.db"),
            "--no-checkpoints",
            "--json",
            *extra,
        ]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        losses = [float(x) for x in re.findall(r"^step \d+/\d+ \(\d+%\) loss ([0-9.]+)", result.stderr, re.M)]
        return json.loads(result.stdout), losses

    return train
