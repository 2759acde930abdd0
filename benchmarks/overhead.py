"""Trainer overhead: the same model, data, optimizer and steps, trained by hasten's Trainer
(no methods) and by a plain hand-written PyTorch loop, alternating, median of the ratios.

    python benchmarks/overhead.py                       # mnist and shakespeare, 7 repeats
    python benchmarks/overhead.py --workload toy --quick

The ratio is Trainer wall-clock for fit() over the plain loop's wall-clock, both with the
same data source and schedule; goal <= 1.03 on CPU. The Trainer's own `train` bucket is
printed too (it excludes the final evaluation, which the plain loop does not do).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from hasten.store.environment import capture_environment
from hasten.trainer.trainer import Trainer, seed_everything
from hasten.workloads.base import get_workload

DEVICE = torch.device("cpu")  # --device sets it


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def build(workload: str, seed: int, data_dir: str | None):
    seed_everything(seed)
    return get_workload(workload).build(seed=seed, device=DEVICE, data_dir=data_dir)


def plain_loop(workload: str, steps: int, data_dir: str | None) -> float:
    """What a competent user writes by hand: same parts, no framework."""
    parts = build(workload, 0, data_dir)
    model, loss_fn = parts.model, parts.loss_fn
    optimizer = parts.optimizer(model)
    peaks = [g["lr"] for g in optimizer.param_groups]
    start = time.perf_counter()
    step, epoch = 0, 0
    while step < steps:
        for x, y in parts.train_data.batches(epoch):
            x, y = x.to(DEVICE, non_blocking=True), y.to(DEVICE, non_blocking=True)
            for group, peak in zip(optimizer.param_groups, peaks):
                group["lr"] = peak * parts.scheduler(step, steps)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            if parts.grad_clip_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), parts.grad_clip_norm)
            optimizer.step()
            loss.item()  # a hand-written loop logs its loss too
            step += 1
            if step == steps:
                break
        epoch += 1
    _sync()
    return time.perf_counter() - start


def trainer_loop(workload: str, steps: int, data_dir: str | None) -> tuple[float, float]:
    parts = build(workload, 0, data_dir)
    trainer = Trainer(
        model=parts.model,
        train_data=parts.train_data,
        eval_data=None,
        optimizer=parts.optimizer,
        scheduler=parts.scheduler,
        loss_fn=parts.loss_fn,
        max_duration=f"{steps}ba",
        device=DEVICE,
        seed=0,
        metrics=parts.metrics,
        grad_clip_norm=parts.grad_clip_norm,
    )
    start = time.perf_counter()
    result = trainer.fit()
    return time.perf_counter() - start, result.train_time_s


def measure(workload: str, steps: int, repeats: int, data_dir: str | None) -> dict:
    plain_loop(workload, max(steps // 10, 2), data_dir)  # warm caches and oneDNN primitives once
    trainer_loop(workload, max(steps // 10, 2), data_dir)
    ratios, train_ratios, plain_times = [], [], []
    for repeat in range(repeats):
        if repeat % 2 == 0:
            plain = plain_loop(workload, steps, data_dir)
            wall, train = trainer_loop(workload, steps, data_dir)
        else:
            wall, train = trainer_loop(workload, steps, data_dir)
            plain = plain_loop(workload, steps, data_dir)
        ratios.append(wall / plain)
        train_ratios.append(train / plain)
        plain_times.append(plain)
        print(
            f"  {workload} repeat {repeat + 1}: plain {plain:.2f}s, trainer {wall:.2f}s -> {wall / plain:.3f}",
            flush=True,
        )
    return {
        "workload": workload,
        "steps": steps,
        "repeats": repeats,
        "median_ratio": statistics.median(ratios),
        "median_train_bucket_ratio": statistics.median(train_ratios),
        "ratios": [round(r, 4) for r in ratios],
        "median_plain_s": statistics.median(plain_times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", action="append", help="workload(s) to measure (default: mnist, shakespeare)")
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: 200 for mnist, 300 otherwise)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both loops on it)")
    parser.add_argument("--quick", action="store_true", help="3 repeats of 30 steps: checks the script runs")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    workloads = args.workload or ["mnist", "shakespeare"]
    repeats = 3 if args.quick else args.repeats
    results = []
    for name in workloads:
        steps = 30 if args.quick else (args.steps or (200 if name == "mnist" else 300))
        results.append(measure(name, steps, repeats, args.data_dir))
    env = capture_environment(DEVICE)
    print(f"\nmachine: {env['cpu']}, {env['threads']} threads, torch {env['torch']}")
    for r in results:
        print(
            f"{r['workload']}: Trainer / plain loop = {r['median_ratio']:.3f} (median of {r['repeats']}, "
            f"{r['steps']} steps; train bucket / plain = {r['median_train_bucket_ratio']:.3f})"
        )
    if args.out:
        args.out.write_text(json.dumps({"env": env, "results": results}, indent=2))


if __name__ == "__main__":
    main()
