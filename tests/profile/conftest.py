"""Profiler tests: a private cache directory, and this machine's quick peaks measured once."""

from __future__ import annotations

import pytest
import torch

from hasten.profile.peaks import Peaks, measure_peaks


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the user's real cache from tests."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def cpu_peaks() -> Peaks:
    """Quick peaks for one thread, the thread count the validation loops run with."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return measure_peaks("cpu", quick=True)
    finally:
        torch.set_num_threads(threads)
