"""Shared fixtures: the real data sets, a scratch run store, single-threaded torch for stable tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# FlashOptim's default (fused=None) compiles its update where torch.compile works: minutes of
# compilation spread over hundreds of tests. The suite runs the eager update unless a test asks
# for fused=True (tests/optim/flash/test_fused.py compares the two paths).
os.environ.setdefault("HASTEN_FLASH_FUSED", "0")


def find_shared_data() -> Path | None:
    """$HASTEN_DATA, else the team's shared folder beside the checkout (../shared/data)."""
    candidates = [os.environ.get("HASTEN_DATA"), REPO.parent / "shared" / "data", REPO / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = find_shared_data()
    if found is None:
        pytest.skip("real data sets not found: set HASTEN_DATA to the folder holding mnist/, cifar10-jpeg/, tinyshakespeare/")
    return found


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs" / "hasten.db"
    monkeypatch.setenv("HASTEN_STORE", str(path))
    return path


@pytest.fixture(autouse=True)
def _torch_threads():
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)
