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


#: each data set's folder under the data directory, and its name in skip reasons
DATASETS = {"mnist": "MNIST", "cifar10-jpeg": "CIFAR-10", "tinyshakespeare": "Tiny Shakespeare"}
_DATA_ERRORS = (FileNotFoundError,)


def _data_errors() -> tuple[type[BaseException], ...]:
    from hasten.errors import DataError

    return (*_DATA_ERRORS, DataError)


def missing_dataset(exc: BaseException, data_dir: Path | None) -> str | None:
    """The skip reason when ``exc`` says a data set is absent and it really is absent from
    ``data_dir`` (a machine given only part of the data); None for every other failure, which
    must still fail (a data set that is present but broken is a bug, not a skip)."""
    if not isinstance(exc, _data_errors()) or data_dir is None:
        return None
    text = f"{exc} {getattr(exc, 'filename', '') or ''}"
    for folder, name in DATASETS.items():
        mentioned = folder in text or (folder == "cifar10-jpeg" and "CIFAR-10" in text)
        present = (data_dir / folder).is_dir() and any((data_dir / folder).iterdir())
        if mentioned and not present:
            return f"{name} is not in {data_dir} ({folder}/ missing): set HASTEN_DATA to a folder that holds it"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):  # type: ignore[no-untyped-def]
    """Fixtures that load a data set the machine lacks: skip, with the reason."""
    try:
        return (yield)
    except BaseException as exc:
        reason = missing_dataset(exc, find_shared_data())
        if reason is not None:
            pytest.skip(reason)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):  # type: ignore[no-untyped-def]
    """Tests that load a data set the machine lacks (CIFAR-10 on a GPU box given only MNIST and
    Tiny Shakespeare): skip, with the reason, instead of failing with FileNotFoundError."""
    try:
        return (yield)
    except BaseException as exc:
        reason = missing_dataset(exc, find_shared_data())
        if reason is not None:
            pytest.skip(reason)
        raise


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = find_shared_data()
    if found is None:
        pytest.skip(
            "real data sets not found: set HASTEN_DATA to the folder holding mnist/, cifar10-jpeg/, tinyshakespeare/"
        )
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
