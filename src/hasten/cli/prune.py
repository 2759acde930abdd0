"""``hasten prune``: the pruning benchmark (strategies x compressions x seeds) and its report."""

from __future__ import annotations

from pathlib import Path

import click

from hasten.cli.common import echo_json, open_store, store_option
from hasten.errors import ConfigError
from hasten.prune.experiment import (
    CONTROL,
    PruneSettings,
    finished_pruning,
    recipe_for,
    run_pruning,
)
from hasten.prune.report import write_pruning_report
from hasten.prune.strategies import STRATEGIES, check_strategy
from hasten.workloads.base import get_workload

DEFAULT_STRATEGIES = "global_magnitude,layer_magnitude,random"


def _compressions(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--compressions {text!r} is not a list of numbers", "write e.g. 2,4,8,16,32") from None
    bad = [v for v in values if not v >= 1]
    if not values or bad:
        raise ConfigError(f"compression {bad[0] if bad else text!r} is below 1", "give ratios >= 1, e.g. 2,4,8,16,32")
    return values


@click.command()
@click.argument("workload")
@click.option(
    "--strategies",
    "-s",
    default=DEFAULT_STRATEGIES,
    show_default=True,
    help=f"Comma-separated, from: {', '.join(STRATEGIES)}.",
)
@click.option(
    "--compressions",
    "-c",
    default="2,4,8,16,32",
    show_default=True,
    help="Compression ratios (parameters / nonzero), each >= 1.",
)
@click.option("--seeds", type=click.IntRange(1), default=2, show_default=True, help="How many seeds.")
@click.option(
    "--first-seed",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Seeds FIRST..FIRST+N-1 (split a benchmark over processes).",
)
@click.option("--pretrain", default=None, help="Training of the model to prune. Default: the workload's duration.")
@click.option(
    "--finetune",
    default="1ep",
    show_default=True,
    help="Fine-tuning: the workload's optimizer and schedule over this budget.",
)
@click.option("--lr-scale", type=float, default=0.1, show_default=True, help="Fine-tuning lr over the workload's.")
@click.option("--include-classifier", is_flag=True, help="Prune the last Linear/Conv2d layer too.")
@click.option("--no-control", is_flag=True, help="Skip the unpruned control (fine-tuned with the same code).")
@click.option("--report-only", is_flag=True, help="Write the report from the runs already in the store.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Report folder. Default: ./hasten-report/WORKLOAD-pruning",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Where the data files are.")
@click.option("--json", "as_json", is_flag=True, help="Print every result as JSON at the end.")
@store_option
def prune(
    workload: str,
    strategies: str,
    compressions: str,
    seeds: int,
    pretrain: str | None,
    finetune: str,
    lr_scale: float,
    first_seed: int,
    include_classifier: bool,
    no_control: bool,
    report_only: bool,
    out_dir: str | None,
    device: str,
    data_dir: str | None,
    as_json: bool,
    store_path: str | None,
) -> None:
    """Prune WORKLOAD's trained baseline by each strategy to each compression, fine-tune, record, report.

    Every point starts from the same trained model per seed (trained once, cached beside the store).
    Masks do not make inference faster: the measured time is reported beside the theoretical speedup.
    """
    get_workload(workload)
    names = [check_strategy(s.strip()) for s in strategies.split(",") if s.strip()]
    targets = _compressions(compressions)
    if lr_scale <= 0:
        raise ConfigError(f"--lr-scale {lr_scale} is not positive", "give a factor such as 0.1")
    store = open_store(store_path)
    results = []
    if not report_only:
        settings = PruneSettings(
            pretrain=pretrain,
            finetune=finetune,
            lr_scale=lr_scale,
            include_classifier=include_classifier,
            device=device,
            data_dir=data_dir,
        )
        points = [(CONTROL, 1.0)] * (not no_control) + [(s, c) for s in names for c in targets]
        for seed in range(first_seed, first_seed + seeds):
            for strategy, compression in points:
                done = finished_pruning(store, workload, strategy, compression, seed, settings)
                if done is not None:
                    results.append(done)
                    continue
                result = run_pruning(workload, strategy, compression, seed=seed, settings=settings, store=store)
                results.append(result)
                metric = result["metric"]
                click.echo(
                    f"{recipe_for(strategy, compression)} seed {seed}: compression {result['compression']:.2f}, "
                    f"theoretical speedup {result['theoretical_speedup']:.2f}, {metric} "
                    f"{result['before'].get(metric, float('nan')):.4f} -> {result['after'].get(metric, float('nan')):.4f}, "
                    f"inference time {result['inference_time_ratio']:.2f}x dense",
                    err=True,
                )
    report = write_pruning_report(store, workload, Path(out_dir or f"hasten-report/{workload}-pruning"))
    if as_json:
        echo_json(results)
    else:
        click.echo(report.read_text())
        click.echo(f"report: {report}")


COMMANDS = [prune]
