"""μnit Scaling on shakespeare: quality in (emulated) FP8 against the baseline, and learning-rate transfer.

    python benchmarks/unit_scaling.py quality  --steps 600 --seeds 0 1 2
    python benchmarks/unit_scaling.py transfer --steps 200 --seeds 0 1 --widths 64 128 256
    python benchmarks/unit_scaling.py plot     # the transfer figure from the recorded JSON
    python benchmarks/unit_scaling.py report   # markdown tables from the recorded JSON
    python benchmarks/unit_scaling.py quality --quick   # a few steps: checks the script runs

quality: the shakespeare workload's baseline recipe (CharGPT, AdamW, warm-up + cosine, clip 1.0, fp32)
against the same recipe with ``unit_scaling:fp8=true`` (μS model, transfer-rule AdamW, hidden linears in FP8,
emulated on a CPU), both through the Trainer, same seeds and data order, loss on the whole validation split
after ``--steps`` steps (the schedule decays over that budget).

transfer: for each width (equal depth ``--layers``) and each learning rate of a grid, the final validation
loss of SP (the baseline CharGPT and its AdamW with one global lr) and of μS (UnitGPT, fp32, lr tuned at
``--base-width`` and transferred: hidden lr * sqrt(base/width)). The optimum per width is the vertex of a
parabola through the best grid point and its neighbours in log2(lr); its uncertainty is the spread of that
vertex over bootstrap resamples of the seeds at each grid point. Validation is on the first
``--val-windows`` windows of the split (the same for every run) to keep the sweep short.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import torch

from hasten.core.metrics import CrossEntropy
from hasten.data.memory import TensorBatches
from hasten.data.text import RandomWindows, load_tiny_shakespeare, windows
from hasten.methods.unit_scaling import UnitScaling
from hasten.models.gpt import CharGPT, GPTConfig, decay_groups
from hasten.optim.schedules import WarmupCosine
from hasten.trainer.trainer import Trainer, default_loss
from hasten.workloads import shakespeare as ws

RESULTS = Path(__file__).parent / "results"
DOCS = Path(__file__).parent.parent / "docs"


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_at_start": os.getloadavg()[0],
    }


def train(
    model: torch.nn.Module,
    *,
    seed: int,
    steps: int,
    algorithms: list,
    optimizer,
    eval_windows: int | None,
    data_dir: str | None,
) -> dict[str, object]:
    corpus = load_tiny_shakespeare(data_dir)
    x_val, y_val = windows(corpus.val, ws.CONTEXT)
    if eval_windows:
        x_val, y_val = x_val[:eval_windows], y_val[:eval_windows]
    trainer = Trainer(
        model=model,
        seed=seed,
        max_duration=f"{steps}ba",
        algorithms=algorithms,
        optimizer=optimizer,
        train_data=RandomWindows(corpus.train, ws.CONTEXT, ws.BATCH, seed=seed, device=torch.device("cpu")),
        eval_data=TensorBatches(x_val, y_val, ws.EVAL_BATCH, shuffle=False, drop_last=False),
        loss_fn=default_loss,
        metrics={"loss": CrossEntropy()},
        grad_clip_norm=ws.CLIP,
        device="cpu",
        scheduler=WarmupCosine(warmup=min(ws.WARMUP_STEPS, steps // 10), final=ws.MIN_LR / ws.LR),
    )
    started = time.perf_counter()
    result = trainer.fit()
    return {
        "loss": result.final.get("loss", float("nan")),
        "status": result.status,
        "train_s": result.train_time_s,
        "wall_s": time.perf_counter() - started,
        "fp8": result.run_info.get("config", {}).get("fp8", "off"),
    }


def sp_optimizer(lr: float):
    return lambda model: torch.optim.AdamW(decay_groups(model, ws.WEIGHT_DECAY), lr=lr, betas=ws.BETAS)


def quality(args: argparse.Namespace) -> None:
    config = GPTConfig(vocab_size=65, context=ws.CONTEXT, layers=4, heads=4, width=128)
    runs = []
    variants = args.variants
    cache = {(r["variant"], r["seed"]): r for r in load_log(args.resume_log) if "variant" in r}
    for seed in args.seeds:
        for variant in variants:  # interleaved per seed
            if (variant, seed) in cache:
                runs.append(cache[(variant, seed)])
                continue
            if args.only_recorded:
                continue
            torch.manual_seed(seed)
            grad_scale = float(variant.partition("grad_scale=")[2] or 1.0)
            fp8 = "fp8=true" in variant
            algorithms = (
                []
                if variant == "baseline"
                else [UnitScaling(fp8=fp8, lr=args.us_lr, base_width=args.base_width, grad_scale=grad_scale)]
            )
            out = train(
                CharGPT(config),
                seed=seed,
                steps=args.steps,
                algorithms=algorithms,
                optimizer=sp_optimizer(ws.LR),
                eval_windows=None,
                data_dir=args.data_dir,
            )
            runs.append({"variant": variant, "seed": seed, **out})
            print(json.dumps(runs[-1]), flush=True)
    summary = {}
    for variant in variants:
        losses = [r["loss"] for r in runs if r["variant"] == variant]
        if not losses:
            continue
        summary[variant] = {
            "mean": statistics.fmean(losses),
            "min": min(losses),
            "max": max(losses),
            "stdev": statistics.stdev(losses) if len(losses) > 1 else 0.0,
        }
    record = {
        "benchmark": "unit_scaling quality",
        "steps": args.steps,
        "seeds": args.seeds,
        "us_lr": args.us_lr,
        "base_width": args.base_width,
        "machine": machine(),
        "load_at_end": os.getloadavg()[0],
        "runs": runs,
        "summary": summary,
    }
    write(record, args.out or "unit_scaling_quality.json", args.quick)


def fit_optimum(
    lrs: list[float], losses_per_lr: list[list[float]], rng: random.Random, draws: int = 200
) -> dict[str, float]:
    """Vertex of a parabola in log2(lr) through the best grid point and its neighbours; bootstrap over seeds."""

    def vertex(means: list[float]) -> float:
        logs = [math.log2(v) for v in lrs]
        finite = [m if math.isfinite(m) else float("inf") for m in means]
        i = min(range(len(finite)), key=finite.__getitem__)
        if i == 0 or i == len(lrs) - 1 or not all(math.isfinite(finite[j]) for j in (i - 1, i + 1)):
            return logs[i]  # at the edge of the grid: the grid point itself
        y0, y1, y2 = finite[i - 1], finite[i], finite[i + 1]
        step = logs[i + 1] - logs[i]
        denom = y0 - 2 * y1 + y2
        shift = 0.5 * step * (y0 - y2) / denom if denom > 0 else 0.0
        return logs[i] + max(-step, min(step, shift))

    point = vertex([statistics.fmean(ls) for ls in losses_per_lr])
    boots = [vertex([statistics.fmean(rng.choices(ls, k=len(ls))) for ls in losses_per_lr]) for _ in range(draws)]
    boots.sort()
    return {
        "lr": 2**point,
        "log2_lr": point,
        "log2_lo": boots[int(0.05 * draws)],
        "log2_hi": boots[int(0.95 * draws) - 1],
    }


def load_log(paths: str | None) -> list[dict]:
    """Finished runs printed by earlier, interrupted invocations (comma-separated logs of JSON lines)."""
    runs = []
    for path in (paths or "").split(","):
        if path and Path(path).exists():
            runs += [json.loads(line) for line in Path(path).read_text().splitlines() if line.startswith('{"')]
    return runs


def load_cache(paths: str | None) -> dict[tuple, dict]:
    return {(r["param"], r["width"], r["lr"], r["seed"]): r for r in load_log(paths) if "param" in r}


def transfer(args: argparse.Namespace) -> None:
    grids = {"sp": args.sp_grid, "us": args.us_grid}
    cache = load_cache(args.resume_log)
    runs = []
    for seed in args.seeds:
        for width in args.widths:
            for i in range(len(grids["sp"])):
                for param in ("sp", "us"):  # interleaved
                    lr = grids[param][i]
                    if (param, width, lr, seed) in cache:
                        runs.append(cache[(param, width, lr, seed)])
                        print(json.dumps(runs[-1]), flush=True)
                        continue
                    config = GPTConfig(vocab_size=65, context=ws.CONTEXT, layers=args.layers, heads=4, width=width)
                    torch.manual_seed(seed)
                    algorithms = [UnitScaling(lr=lr, base_width=args.base_width)] if param == "us" else []
                    out = train(
                        CharGPT(config),
                        seed=seed,
                        steps=args.steps,
                        algorithms=algorithms,
                        optimizer=sp_optimizer(lr),
                        eval_windows=args.val_windows,
                        data_dir=args.data_dir,
                    )
                    runs.append({"param": param, "width": width, "lr": lr, "seed": seed, **out})
                    print(json.dumps(runs[-1]), flush=True)
    rng = random.Random(0)
    optima = {}
    for param in ("sp", "us"):
        for width in args.widths:
            per_lr = [
                [
                    r["loss"] if math.isfinite(r["loss"]) else float("inf")
                    for r in runs
                    if r["param"] == param and r["width"] == width and r["lr"] == lr
                ]
                for lr in grids[param]
            ]
            optima[f"{param}/{width}"] = fit_optimum(grids[param], per_lr, rng)
    record = {
        "benchmark": "unit_scaling transfer",
        "steps": args.steps,
        "layers": args.layers,
        "widths": args.widths,
        "heads": 4,
        "seeds": args.seeds,
        "base_width": args.base_width,
        "grids": grids,
        "val_windows": args.val_windows,
        "machine": machine(),
        "load_at_end": os.getloadavg()[0],
        "runs": runs,
        "optima": optima,
    }
    write(record, "unit_scaling_transfer.json", args.quick)
    if not args.quick:
        plot(args)


def plot(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    record = json.loads((RESULTS / "unit_scaling_transfer.json").read_text())
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    titles = {
        "sp": "standard parametrization (one global lr)",
        "us": f"μnit Scaling (lr tuned at width {record['base_width']})",
    }
    for ax, param in zip(axes, ("sp", "us")):
        for width in record["widths"]:
            lrs = record["grids"][param]
            means = [
                statistics.fmean(
                    [r["loss"] for r in record["runs"] if r["param"] == param and r["width"] == width and r["lr"] == lr]
                )
                for lr in lrs
            ]
            (line,) = ax.plot(lrs, means, marker="o", label=f"width {width}")
            opt = record["optima"][f"{param}/{width}"]
            ax.axvline(opt["lr"], color=line.get_color(), linestyle=":", linewidth=1)
            ax.axvspan(2 ** opt["log2_lo"], 2 ** opt["log2_hi"], color=line.get_color(), alpha=0.08)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(
            "learning rate (μS: base lr before the sqrt(base/width) rule)" if param == "us" else "learning rate"
        )
        ax.set_title(titles[param], fontsize=10)
        ax.legend()
    axes[0].set_ylabel(f"validation loss after {record['steps']} steps")
    top = min(max(r["loss"] for r in record["runs"] if math.isfinite(r["loss"])), 3.5)
    axes[0].set_ylim(top=top)
    fig.suptitle(f"Tiny Shakespeare, {record['layers']} layers; dotted: fitted optimum, band: 90% bootstrap")
    fig.tight_layout()
    fig.savefig(DOCS / "unit-scaling-transfer.png", dpi=110)
    print(f"wrote {DOCS / 'unit-scaling-transfer.png'}")


def report(args: argparse.Namespace) -> None:
    """Markdown tables of the recorded results, for docs/unit-scaling.md."""
    quality_path = RESULTS / "unit_scaling_quality.json"
    if quality_path.exists():
        q = json.loads(quality_path.read_text())
        print("| variant | seeds | validation loss per seed | mean |\n| --- | --- | --- | ---: |")
        for variant, summary in q["summary"].items():
            losses = [f"{r['loss']:.4f}" for r in q["runs"] if r["variant"] == variant]
            seeds = [str(r["seed"]) for r in q["runs"] if r["variant"] == variant]
            print(f"| `{variant}` | {', '.join(seeds)} | {' / '.join(losses)} | {summary['mean']:.4f} |")
    t = json.loads((RESULTS / "unit_scaling_transfer.json").read_text())
    print("\n| parametrization | width | optimum lr | 90% bootstrap interval |\n| --- | ---: | ---: | --- |")
    for key, opt in t["optima"].items():
        param, width = key.split("/")
        print(
            f"| {param.upper()} | {width} | {opt['lr']:.3g} | {2 ** opt['log2_lo']:.3g} - {2 ** opt['log2_hi']:.3g} |"
        )


def write(record: dict, name: str, quick: bool) -> None:
    path = RESULTS / (name.replace(".json", "-quick.json") if quick else name)
    if quick:
        print(json.dumps(record, indent=1)[:2000])
        return
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("quality", "transfer", "plot", "report"))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--base-width", type=int, default=64)
    parser.add_argument("--us-lr", type=float, default=0.1, help="μS lr in the quality runs (tuned at --base-width)")
    parser.add_argument("--sp-grid", type=float, nargs="+", default=[1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2])
    parser.add_argument("--us-grid", type=float, nargs="+", default=[0.0125, 0.025, 0.05, 0.1, 0.2])
    parser.add_argument("--val-windows", type=int, default=512)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["baseline", "unit_scaling:fp8=true"],
        help="quality: baseline, unit_scaling (fp32) and/or unit_scaling:fp8=true[,grad_scale=G]",
    )
    parser.add_argument(
        "--only-recorded", action="store_true", help="quality: train nothing, summarise the runs found in --resume-log"
    )
    parser.add_argument("--out", help="quality: the results file name under benchmarks/results/")
    parser.add_argument("--resume-log", help="earlier runs' output logs (comma-separated): finished runs are reused")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--data-dir", default=os.environ.get("HASTEN_DATA", str(Path(__file__).parents[1].parent / "shared" / "data"))
    )
    parser.add_argument("--quick", action="store_true", help="a few steps, nothing written: checks the script")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.steps, args.seeds, args.widths, args.val_windows = 4, args.seeds[:1], args.widths[:1], 16
    {"quality": quality, "transfer": transfer, "plot": plot, "report": report}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
