"""This device's achievable peaks, measured once and cached: the roofline's roofs.

Vendor datasheet peaks are not achievable (and PyTorch's own table quotes sparse tensor-core
figures for H100), so utilization is reported against what a large matrix product and a
large copy actually reach here. Peaks depend on the device, the thread count (on CPU), the
fp32 matmul precision setting (TF32 on GPU) and the PyTorch version; the cache key holds all
four. ``hasten microbench`` measures carefully; the profiler measures a quick set on the fly
when none is cached.

Other load on the machine can only make a figure lower, never higher, so every figure is the
best of several rounds, and a new measurement is merged into the cache figure by figure, best
kept (``merge_peaks``): a run on a busy machine cannot drag the cached roofs down unless the
user forces it, and whenever a new figure is clearly worse than the cached one, it is said.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from hasten.profile.microbench import SweepPoint, copy_rate, gemm_rate, op_overhead, sweep_ops

# (fp32 GEMM sizes, bf16 GEMM sizes, copy bytes) per device type and mode
_PLAN = {
    ("cpu", True): ((512,), (128,), 32 << 20),
    ("cpu", False): ((512, 1024, 2048), (256, 512), 256 << 20),
    ("cuda", True): ((4096,), (4096,), 256 << 20),
    ("cuda", False): ((4096, 8192), (4096, 8192), 1 << 30),
}


def cache_dir() -> Path:
    """hasten's per-user cache (``$XDG_CACHE_HOME/hasten``, else ``~/.cache/hasten``)."""
    from hasten.data.files import cache_root

    return cache_root()


def device_label(device: torch.device) -> str:
    from hasten.store.environment import device_name

    return device_name(device)


@dataclass
class Peaks:
    """Achievable rates on one device. ``matmul_flops`` maps dtype name to FLOP/s."""

    device_type: str
    device_name: str
    threads: int
    torch_version: str
    matmul_precision: str
    matmul_flops: dict[str, float]
    bandwidth: float
    op_overhead_s: float
    quick: bool
    measured_at: str = ""
    sweep: list[SweepPoint] = field(default_factory=list)
    load_average: dict[str, list[float]] | None = None  # {"start"|"end": [1, 5, 15-minute load]}
    rounds: int = 1

    def peak_flops(self, dtype: str = "float32") -> float:
        """Peak for ``dtype``; float16 reads bfloat16's, anything unmeasured reads float32's."""
        if dtype == "float16" and "float16" not in self.matmul_flops:
            dtype = "bfloat16"
        return self.matmul_flops.get(dtype, self.matmul_flops["float32"])

    @property
    def busy(self) -> float | None:
        """The highest 1-minute load average seen while measuring, per CPU core (None if unknown).
        Above 1, other processes were competing for the cores."""
        if not self.load_average:
            return None
        loads = [values[0] for values in self.load_average.values() if values]
        return max(loads) / (os.cpu_count() or 1) if loads else None

    def ridge(self, dtype: str = "float32") -> float:
        """Arithmetic intensity (FLOP/byte) where the roofline turns from bandwidth to compute."""
        return self.peak_flops(dtype) / self.bandwidth

    @property
    def key(self) -> str:
        return peaks_key(self.device_type, self.device_name, self.threads, self.torch_version, self.matmul_precision)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sweep"] = [p.to_dict() for p in self.sweep]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Peaks":
        data = dict(data)
        data["sweep"] = [SweepPoint(**p) for p in data.get("sweep", [])]
        return cls(**data)


def peaks_key(device_type: str, name: str, threads: int, version: str, precision: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "unknown"
    return f"{device_type}-{slug}-{threads}t-{precision}-torch{version.split('+')[0]}"


def _identity(device: torch.device) -> tuple[str, str, int, str, str]:
    return (
        device.type,
        device_label(device),
        torch.get_num_threads(),
        torch.__version__,
        torch.get_float32_matmul_precision(),
    )


def cache_path(device: torch.device) -> Path:
    return cache_dir() / "peaks" / f"{peaks_key(*_identity(device))}.json"


def load_peaks(device: torch.device | str) -> Peaks | None:
    """The cached peaks for this device and setting, or None (also for an unreadable cache file)."""
    path = cache_path(torch.device(device))
    try:
        return Peaks.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def save_peaks(peaks: Peaks) -> Path:
    """Write atomically: a crash mid-write never leaves a half-written cache file."""
    path = cache_dir() / "peaks" / f"{peaks.key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(peaks.to_dict(), indent=1))
    tmp.replace(path)
    return path


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages, or None where the system has none (Windows)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def measure_peaks(
    device: torch.device | str = "cpu", *, quick: bool = False, sweep: bool = False, rounds: int | None = None
) -> Peaks:
    """Measure matmul FLOP/s (fp32, bf16), copy bandwidth and per-operation overhead.

    ``quick`` takes well under a second on a CPU; ``sweep`` adds every op class across sizes
    (for the roofline plot), which takes tens of seconds on a CPU. Each figure is the best of
    ``rounds`` rounds (default 2 quick, 3 otherwise), taken one after the other, so a burst of
    other load spoils at most one of them.
    """
    device = torch.device(device)
    kind = "cuda" if device.type == "cuda" else "cpu"
    fp32_sizes, bf16_sizes, copy_bytes = _PLAN[(kind, quick)]
    repeats, block = (3, 0.01) if quick else (5, 0.05)
    rounds = rounds if rounds is not None else (2 if quick else 3)
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    load_before = load_average()
    fp32, bf16, bandwidth, overhead = 0.0, 0.0, 0.0, float("inf")
    for _ in range(rounds):
        fp32 = max(fp32, *(gemm_rate(device, n, torch.float32, repeats=repeats, block_s=block) for n in fp32_sizes))
        bf16 = max(bf16, *(gemm_rate(device, n, torch.bfloat16, repeats=repeats, block_s=block) for n in bf16_sizes))
        bandwidth = max(bandwidth, copy_rate(device, copy_bytes, repeats=repeats, block_s=block))
        overhead = min(overhead, op_overhead(device))
    flops = {"float32": fp32, "bfloat16": bf16}
    device_type, name, threads, version, precision = _identity(device)
    points: list[SweepPoint] = []
    if sweep:
        big = device.type == "cuda"
        points = sweep_ops(
            device,
            matmul_sizes=(64, 128, 256, 512, 1024, 2048, 4096, 8192) if big else (32, 64, 128, 256, 512, 1024),
            elementwise_sizes=tuple(2**k for k in range(10, 29 if big else 25, 2)),
            dtypes=(torch.float32, torch.bfloat16) if big else (torch.float32,),
        )
    return Peaks(
        device_type=device_type,
        device_name=name,
        threads=threads,
        torch_version=version,
        matmul_precision=precision,
        matmul_flops=flops,
        bandwidth=bandwidth,
        op_overhead_s=overhead,
        quick=quick,
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
        sweep=points,
        load_average=None if load_before is None else {"start": load_before, "end": load_average() or []},
        rounds=rounds,
    )


# A new figure below this fraction of the cached one is "clearly worse": said, and not cached.
CLEARLY_WORSE = 0.8


@dataclass(frozen=True)
class Change:
    """One figure of a new measurement against the cached one (rates: higher is better;
    the per-operation overhead: lower is better)."""

    figure: str
    cached: float
    measured: float
    higher_is_better: bool = True

    @property
    def ratio(self) -> float:
        """How good the new figure is relative to the cached one (< 1: worse)."""
        if self.higher_is_better:
            return self.measured / self.cached if self.cached > 0 else math.inf
        return self.cached / self.measured if self.measured > 0 else math.inf

    @property
    def clearly_worse(self) -> bool:
        return self.ratio < CLEARLY_WORSE


def _figures(peaks: Peaks) -> dict[str, tuple[float, bool]]:
    out = {f"matmul {dtype}": (rate, True) for dtype, rate in peaks.matmul_flops.items()}
    out["copy bandwidth"] = (peaks.bandwidth, True)
    out["op overhead"] = (peaks.op_overhead_s, False)
    return out


def compare_peaks(cached: Peaks, measured: Peaks) -> list[Change]:
    """Every figure the two measurements share, new against cached."""
    old, new = _figures(cached), _figures(measured)
    return [Change(name, old[name][0], value, hib) for name, (value, hib) in new.items() if name in old]


def merge_peaks(cached: Peaks | None, measured: Peaks) -> Peaks:
    """What the cache should hold after ``measured``: figure by figure the better of the two
    (other load only ever lowers a figure), sweep points by their faster time."""
    if cached is None or cached.key != measured.key:
        return measured
    flops = dict(cached.matmul_flops)
    for dtype, rate in measured.matmul_flops.items():
        flops[dtype] = max(rate, flops.get(dtype, 0.0))
    points = {(p.op, p.size, p.dtype): p for p in cached.sweep}
    for p in measured.sweep:
        known = points.get((p.op, p.size, p.dtype))
        if known is None or p.seconds < known.seconds:
            points[(p.op, p.size, p.dtype)] = p
    return replace(
        measured,
        matmul_flops=flops,
        bandwidth=max(cached.bandwidth, measured.bandwidth),
        op_overhead_s=min(cached.op_overhead_s, measured.op_overhead_s),
        quick=cached.quick and measured.quick,
        sweep=list(points.values()),
        rounds=cached.rounds + measured.rounds,
    )


_QUICK: dict[str, Peaks] = {}


def get_peaks(device: torch.device | str = "cpu") -> Peaks:
    """Cached peaks (written by ``hasten microbench``), or a quick measurement on the fly.

    A quick measurement is kept for this process only: one taken on a busy machine should
    not stand in for the device's peaks in later runs.
    """
    device = torch.device(device)
    peaks = load_peaks(device)
    if peaks is None:
        key = peaks_key(*_identity(device))
        if key not in _QUICK:
            _QUICK[key] = measure_peaks(device, quick=True)
        peaks = _QUICK[key]
    return peaks
