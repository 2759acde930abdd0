"""This device's achievable peaks, measured once and cached: the roofline's roofs.

Vendor datasheet peaks are not achievable (and PyTorch's own table quotes sparse tensor-core
figures for H100), so utilization is reported against what a large matrix product and a
large copy actually reach here. Peaks depend on the device, the thread count (on CPU), the
fp32 matmul precision setting (TF32 on GPU) and the PyTorch version; the cache key holds all
four. ``hasten microbench`` measures carefully; the profiler measures a quick set on the fly
when none is cached.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
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

    def peak_flops(self, dtype: str = "float32") -> float:
        """Peak for ``dtype``; float16 reads bfloat16's, anything unmeasured reads float32's."""
        if dtype == "float16" and "float16" not in self.matmul_flops:
            dtype = "bfloat16"
        return self.matmul_flops.get(dtype, self.matmul_flops["float32"])

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
    return (device.type, device_label(device), torch.get_num_threads(), torch.__version__,
            torch.get_float32_matmul_precision())


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


def measure_peaks(device: torch.device | str = "cpu", *, quick: bool = False, sweep: bool = False) -> Peaks:
    """Measure matmul FLOP/s (fp32, bf16), copy bandwidth and per-operation overhead.

    ``quick`` takes well under a second on a CPU; ``sweep`` adds every op class across sizes
    (for the roofline plot), which takes tens of seconds on a CPU.
    """
    device = torch.device(device)
    kind = "cuda" if device.type == "cuda" else "cpu"
    fp32_sizes, bf16_sizes, copy_bytes = _PLAN[(kind, quick)]
    repeats, block = (3, 0.01) if quick else (5, 0.05)
    flops = {
        "float32": max(gemm_rate(device, n, torch.float32, repeats=repeats, block_s=block) for n in fp32_sizes),
        "bfloat16": max(gemm_rate(device, n, torch.bfloat16, repeats=repeats, block_s=block) for n in bf16_sizes),
    }
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
        bandwidth=copy_rate(device, copy_bytes, repeats=repeats, block_s=block),
        op_overhead_s=op_overhead(device),
        quick=quick,
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
        sweep=points,
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
