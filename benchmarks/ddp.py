"""Data-parallel scaling on CPU: 2 gloo processes against 1 at the same per-process batch.

    python benchmarks/ddp.py                     # toy and mnist, 3 repeats, about 2 minutes on 2 cores
    python benchmarks/ddp.py --workloads toy --repeats 5 --out /tmp/ddp.json

Each repeat trains the workload's baseline for ``--steps`` steps with hasten's Trainer, once on
one process at ``--batch`` samples per step and once on two (``torchrun --standalone``) at twice
that global batch, so each process does the same work per step; the two alternate (1 2 1 2 ...).
Reported per workload, as medians over repeats:

- ``scaling_efficiency``: samples/s on 2 processes over 2 x samples/s on 1 (1.0: perfect);
- ``step_time_ratio``: seconds per step on 2 processes over 1 (the DDP overhead per step: the
  all-reduce, the per-step counter all-reduce, and the cores the processes share);
- ``allreduce_share``: seconds in gradient all-reduces (DDP comm hook, launch to completion, so
  partly overlapped with backward) over training seconds, on 2 processes.

Times are the Trainer's ``train`` bucket (the slowest rank's), after ``--warmup`` steps that are
charged to ``warmup``; process start-up and data loading before the first step are not counted.
Every process runs one torch thread, so 2 processes need 2 free cores: say the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def worker(args: argparse.Namespace) -> None:
    """One run (inside torchrun): the workload's baseline at a per-process batch of ``args.batch``."""
    torch.set_num_threads(1)
    from hasten.data.memory import TensorBatches
    from hasten.trainer.trainer import Trainer, seed_everything
    from hasten.workloads.base import get_workload

    world = int(os.environ.get("WORLD_SIZE", "1"))
    seed_everything(0)
    parts = get_workload(args.workload).build(seed=0, device=torch.device("cpu"), data_dir=args.data_dir)
    source = parts.train_data
    if not isinstance(source, TensorBatches):
        raise SystemExit(f"{args.workload}: the benchmark re-batches in-memory (TensorBatches) data only")
    train = TensorBatches(source.inputs, source.targets, args.batch * world, seed=0, transform=source.transform)
    trainer = Trainer(
        model=parts.model,
        train_data=train,
        optimizer=parts.optimizer,
        scheduler=parts.scheduler,
        loss_fn=parts.loss_fn,
        max_duration=f"{args.steps + args.warmup}ba",
        device="cpu",
        metrics=parts.metrics,
        grad_clip_norm=parts.grad_clip_norm,
        warmup_steps=args.warmup,
    )
    result = trainer.fit()
    if trainer.replicas.writer:
        Path(args.out).write_text(
            json.dumps(
                {
                    "world_size": trainer.replicas.world_size,
                    "train_s": result.timing["train"],
                    "steps": args.steps,
                    "samples": args.steps * args.batch * world,
                    "communication_s": result.timing.get("communication", 0.0),
                }
            )
        )


def launch(workload: str, processes: int, args: argparse.Namespace, out: Path) -> dict:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    command += [str(Path(__file__).resolve()), "--worker", "--workloads", workload, "--out", str(out)]
    command += ["--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{workload} on {processes} process(es) failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default="toy,mnist")
    parser.add_argument("--batch", type=int, default=128, help="samples per process per step")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ddp.json"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.workload = args.workloads
        worker(args)
        return

    from hasten.store.environment import capture_environment

    started, load_start = time.time(), load()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workload in args.workloads.split(","):
            runs: dict[int, list[dict]] = {1: [], 2: []}
            for repeat in range(args.repeats):
                for processes in (1, 2):
                    runs[processes].append(
                        launch(workload, processes, args, Path(tmp) / f"{workload}-{processes}-{repeat}.json")
                    )
            rate = {n: [r["samples"] / r["train_s"] for r in runs[n]] for n in runs}
            step = {n: [r["train_s"] / r["steps"] for r in runs[n]] for n in runs}
            results[workload] = {
                "per_process_batch": args.batch,
                "steps": args.steps,
                "samples_per_s": {str(n): [round(v, 1) for v in rate[n]] for n in rate},
                "scaling_efficiency": round(statistics.median(b / (2 * a) for a, b in zip(rate[1], rate[2])), 3),
                "step_time_ratio": round(statistics.median(b / a for a, b in zip(step[1], step[2])), 3),
                "allreduce_share": round(statistics.median(r["communication_s"] / r["train_s"] for r in runs[2]), 3),
            }
            print(f"{workload}: {json.dumps(results[workload])}", flush=True)
    record = {
        "benchmark": "ddp",
        "command": "python benchmarks/ddp.py " + " ".join(sys.argv[1:]),
        "machine": capture_environment(torch.device("cpu")),
        "cpu_count": os.cpu_count(),
        "threads_per_process": 1,
        "load_average_start": load_start,
        "load_average_end": load(),
        "wall_s": round(time.time() - started, 1),
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out} ({record['wall_s']} s; load {load_start} -> {record['load_average_end']})")


if __name__ == "__main__":
    main()
