"""Optimizer step time alone: FlashAdamW (fused and eager) and Muon against torch's AdamW.

    python benchmarks/optimizer_step.py                       # CPU: a 12.6M-parameter MLP + the shakespeare model
    python benchmarks/optimizer_step.py --device cuda         # a GPU (synchronized timings, peak memory)
    python benchmarks/optimizer_step.py --quick               # a smoke test of the script, not a result
    python benchmarks/optimizer_step.py --out benchmarks/results/optimizer_step-cpu.json

Each variant owns its model copy and a fixed set of gradients; one timed repeat is one
``optimizer.step()``, and repeats are interleaved (A B C A B C ...) so drift on a shared machine
hits every variant alike. Reported: median step time per variant, and the ratios the goals name:

- ``flash_adamw_fused / best torch AdamW`` (``fused=True`` or ``foreach=True``, whichever is faster
  here) for the MLP (issue goal: <= 1.1 on CPU, <= 1.05 on CUDA);
- ``muon / adamw`` per training step (forward, backward, optimizer) on the shakespeare workload's
  model and batch, Muon built as the ``muon`` method builds it (goal on CPU: <= 1.3); the optimizer
  step alone is reported too.

Compilation (the fused update's first steps) happens in untimed warm-up steps, as the Trainer
charges it to its ``warmup`` bucket. Bytes per parameter come from ``memory_report``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def mlp(width: int, depth: int) -> nn.Module:
    return nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])


def _with_grads(model: nn.Module, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    for param in model.parameters():
        param.grad = (torch.randn(param.shape, generator=generator) * 1e-3).to(param.device, param.dtype)
    return model


def flash_variant(
    base: nn.Module, device: torch.device, fused: bool | None
) -> tuple[nn.Module, torch.optim.Optimizer]:
    import copy

    from hasten.optim.flash import FlashAdamW, cast_model

    model = cast_model(copy.deepcopy(base), torch.bfloat16).to(device)
    return _with_grads(model, 0), FlashAdamW(model.parameters(), lr=1e-3, weight_decay=0.01, fused=fused)


def torch_variant(base: nn.Module, device: torch.device, **options) -> tuple[nn.Module, torch.optim.Optimizer]:
    import copy

    model = copy.deepcopy(base).to(device)
    return _with_grads(model, 0), torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, **options)


def time_steps(
    variants: dict[str, torch.optim.Optimizer], device: torch.device, repeats: int, warmup: int
) -> dict[str, list[float]]:
    """Interleaved repeats of one ``step()`` per variant; ``warmup`` untimed steps first (compilation)."""
    for optimizer in variants.values():
        for _ in range(warmup):
            optimizer.step()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, optimizer in variants.items():
            _sync(device)
            started = time.perf_counter()
            optimizer.step()
            _sync(device)
            times[name].append(time.perf_counter() - started)
    return times


def adamw_block(device: torch.device, width: int, depth: int, repeats: int, compiled: bool = True) -> dict:
    from hasten.optim.flash import memory_report, native
    from hasten.optim.flash.fused import FUSED_ENV, compile_problem

    os.environ.pop(FUSED_ENV, None)  # fused=None must pick the default path, not a pinned one

    base = mlp(width, depth)
    params = sum(p.numel() for p in base.parameters())
    builders: dict[str, Callable[[], tuple[nn.Module, torch.optim.Optimizer]]] = {
        "torch_adamw_fused": lambda: torch_variant(base, device, fused=True),
        "torch_adamw_foreach": lambda: torch_variant(base, device, foreach=True),
        "flash_adamw_eager": lambda: flash_variant(base, device, fused=False),
    }
    if device.type == "cpu" and native.available():  # the CPU default: the one-pass C kernel
        builders["flash_adamw_native"] = lambda: flash_variant(base, device, fused=None)
    problem = compile_problem(device.type) if compiled else "skipped (--no-compiled)"
    if problem is None:
        builders["flash_adamw_fused"] = lambda: flash_variant(base, device, fused=True)
    built = {name: build() for name, build in builders.items()}
    times = time_steps({name: opt for name, (_, opt) in built.items()}, device, repeats, warmup=3)
    medians = {name: statistics.median(t) for name, t in times.items()}
    best_torch = min(medians["torch_adamw_fused"], medians["torch_adamw_foreach"])
    bytes_per_param = {name: memory_report(model, opt).bytes_per_param for name, (model, opt) in built.items()}
    result = {
        "model": f"MLP {depth} x Linear({width}, {width})",
        "params": params,
        "median_s": medians,
        "bytes_per_param": bytes_per_param,
        "compile_problem": problem,
        "ratio_eager_vs_best_torch": medians["flash_adamw_eager"] / best_torch,
    }
    if "flash_adamw_fused" in medians:
        result["ratio_fused_vs_best_torch"] = medians["flash_adamw_fused"] / best_torch
    if "flash_adamw_native" in medians:
        result["ratio_native_vs_best_torch"] = medians["flash_adamw_native"] / best_torch
    return result


def muon_block(device: torch.device, data_dir: str | None, repeats: int) -> dict:
    """Whole training steps (forward, backward, optimizer step) on the shakespeare model: the
    step-time ratio a user sees when switching AdamW for Muon; plus the optimizer step alone."""
    import copy

    from hasten.optim.muon import build_muon, fast_ns_dtype
    from hasten.workloads.base import get_workload

    parts = get_workload("shakespeare").build(data_dir=data_dir, seed=0, device=device)
    batches = parts.train_data.batches(0)
    batch = [t.to(device) for t in next(iter(batches))]
    models = {name: copy.deepcopy(parts.model).to(device) for name in ("adamw", "muon")}
    optimizers = {
        "adamw": parts.optimizer(models["adamw"]),
        "muon": build_muon(models["muon"], baseline=parts.optimizer(models["muon"])),
    }

    def train_step(name: str) -> None:
        optimizers[name].zero_grad(set_to_none=True)
        parts.loss_fn(models[name](batch[0]), batch[1]).backward()
        optimizers[name].step()

    step_times: dict[str, list[float]] = {name: [] for name in models}
    for name in models:  # warm-up: state allocation, oneDNN primitives, the bf16/fp32 measurement
        train_step(name)
        train_step(name)
    for _ in range(repeats):
        for name in models:
            _sync(device)
            started = time.perf_counter()
            train_step(name)
            _sync(device)
            step_times[name].append(time.perf_counter() - started)
    optimizer_times = time_steps(optimizers, device, repeats, warmup=0)
    step = {name: statistics.median(t) for name, t in step_times.items()}
    alone = {name: statistics.median(t) for name, t in optimizer_times.items()}
    return {
        "model": "shakespeare workload model",
        "params": sum(p.numel() for p in parts.model.parameters()),
        "batch": list(batch[0].shape),
        "adamw_optimizer": type(optimizers["adamw"]).__name__,
        "ns_dtype": str(fast_ns_dtype(device)),
        "train_step_median_s": step,
        "optimizer_step_median_s": alone,
        "ratio_muon_vs_adamw_train_step": step["muon"] / step["adamw"],
        "ratio_muon_vs_adamw_optimizer_step": alone["muon"] / alone["adamw"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--width", type=int, default=1776, help="MLP width (4 x 1776^2 + biases = 12.6M params)")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--parts", default="adamw,muon", help="which comparisons to run")
    parser.add_argument("--quick", action="store_true", help="a small MLP, 3 repeats: checks the script runs")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (1 on a shared, overloaded machine: OpenMP spinning there "
        "makes small ops 100x slower and the timings meaningless)",
    )
    parser.add_argument("--no-compiled", action="store_true", help="skip the torch.compile variant (slow to build on CPU)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.width, args.repeats = 256, 3
    parts = args.parts.split(",")
    report: dict = {"device": str(device), "threads": torch.get_num_threads()}
    if "adamw" in parts:
        report["adamw"] = adamw_block(device, args.width, args.depth, args.repeats, compiled=not args.no_compiled)
    if "muon" in parts:
        report["muon"] = muon_block(device, args.data_dir, args.repeats)
    if device.type == "cuda":
        report["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
    try:
        report["load_average"] = os.getloadavg()
    except OSError:
        pass
    print(json.dumps(report, indent=1))
    if args.out:
        from hasten.store.environment import capture_environment

        report["env"] = capture_environment(device)
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
