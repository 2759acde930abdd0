"""Timing buckets: training time is only training (DESIGN.md section 4, rule 1).

Exactly one bucket is open at a time; switching buckets closes the current one. On
CUDA the device is synchronized at every bucket edge so queued kernels are charged
to the bucket that launched them. ``data_wait`` is a sub-bucket of ``train``: host time
spent in ``next()`` on the data source, without a sync (a sync there would serialise
data loading with device work and change what it measures).

The process's CPU time is read at the same edges and kept for ``train`` (``train_cpu``): on a
CPU run it falls far below the wall time when other processes take the cores, which is how a
busy machine is told from a slow recipe afterwards.

``communication`` is another measurement, not a bucket: seconds a data-parallel run spent in
gradient all-reduces (launch to completion, so partly overlapped with backward), added by the
DDP communication hook (``hasten.trainer.distributed``); it appears in ``state_dict`` once non-zero.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

import torch

BUCKETS = ("train", "data_wait", "eval", "checkpoint", "warmup")


class TimingBuckets:
    def __init__(self, device: torch.device | str = "cpu") -> None:
        device = torch.device(device)
        self._cuda = device.type == "cuda"
        self.totals: dict[str, float] = dict.fromkeys(BUCKETS, 0.0)
        self.train_cpu = 0.0  # process CPU seconds (all threads) while ``train`` was open
        self.communication = 0.0  # seconds in gradient all-reduces (data-parallel runs)
        self._current: str | None = None
        self._since = 0.0
        self._cpu_since = 0.0

    def _sync(self) -> None:
        if self._cuda:
            torch.cuda.synchronize()

    def _close_current(self) -> float:
        self._sync()
        now, cpu = time.perf_counter(), time.process_time()
        if self._current is not None:
            self.totals[self._current] += now - self._since
            if self._current == "train":
                self.train_cpu += cpu - self._cpu_since
        self._since, self._cpu_since = now, cpu
        return now

    def start(self, bucket: str = "train") -> None:
        self._close_current()
        self._current = bucket

    def stop(self) -> None:
        self._close_current()
        self._current = None

    @contextlib.contextmanager
    def bucket(self, name: str) -> Iterator[None]:
        """Charge the enclosed time to ``name``, then return to the bucket that was open."""
        if name not in BUCKETS or name == "data_wait":
            raise ValueError(f"unknown bucket {name!r}")
        previous = self._current
        self._close_current()
        self._current = name
        try:
            yield
        finally:
            self._close_current()
            self._current = previous

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Charge the enclosed time to no bucket (bookkeeping such as the first store write)."""
        previous = self._current
        self.stop()
        try:
            yield
        finally:
            if previous is not None:
                self.start(previous)

    @contextlib.contextmanager
    def data_wait(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.totals["data_wait"] += time.perf_counter() - start

    def add_communication(self, seconds: float) -> None:
        """Called from the all-reduce's completion callback (another thread under gloo)."""
        self.communication += seconds

    def elapsed(self, name: str) -> float:
        """Bucket total including the interval still open (no sync: cheap, for progress display)."""
        total = self.totals[name]
        if self._current == name:
            total += time.perf_counter() - self._since
        return total

    def read(self, name: str) -> float:
        """Bucket total including the open interval, synchronized (for recorded measurements)."""
        self._sync()
        return self.elapsed(name)

    def state_dict(self) -> dict[str, float]:
        state = {k: self.elapsed(k) for k in BUCKETS}
        open_cpu = time.process_time() - self._cpu_since if self._current == "train" else 0.0
        state["train_cpu"] = self.train_cpu + open_cpu
        if self.communication:
            state["communication"] = self.communication
        return state

    def load_state_dict(self, state: dict[str, float]) -> None:
        for key in BUCKETS:
            self.totals[key] = float(state.get(key, 0.0))
        self.train_cpu = float(state.get("train_cpu", 0.0))
        self.communication = float(state.get("communication", 0.0))
        self._since, self._cpu_since = time.perf_counter(), time.process_time()
