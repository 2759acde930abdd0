"""``hasten demo``: the main job in one command -- race a baseline against a faster recipe."""

from __future__ import annotations

from pathlib import Path

import click

from hasten.curves.demo import DEFAULT_OUT, DEMO_EVAL_INTERVAL, DEMO_RECIPE, DEMO_SEEDS, DEMO_WORKLOAD, run_demo


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=str(DEFAULT_OUT),
    show_default=True,
    help="Folder for the report and the race's run database (replaced on each demo).",
)
@click.option("--workload", default=DEMO_WORKLOAD, show_default=True, help="Workload to race on.")
@click.option("--recipe", default=DEMO_RECIPE, show_default=True, help="Recipe raced against the baseline.")
@click.option("--seeds", type=click.IntRange(min=1), default=DEMO_SEEDS, show_default=True, help="Seeds per recipe.")
@click.option("--target", type=float, default=None, help="Quality to reach. Default: the workload's target.")
@click.option("--duration", default=None, help="Budget of every run. Default: the workload's.")
@click.option("--eval-interval", default=DEMO_EVAL_INTERVAL, show_default=True, help="How often to evaluate.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Where the data files are.")
def demo(
    out_dir: str,
    workload: str,
    recipe: str,
    seeds: int,
    target: float | None,
    duration: str | None,
    eval_interval: str,
    device: str,
    data_dir: str | None,
) -> None:
    """Race the baseline against a faster recipe (defaults need no flags): print each one's time to
    the target, the speedup with its 95% interval and its two factors, and write an HTML report."""
    run_demo(
        Path(out_dir),
        workload=workload,
        recipe=recipe,
        seeds=seeds,
        target=target,
        duration=duration,
        eval_interval=eval_interval,
        device=device,
        data_dir=data_dir,
    )


COMMANDS = [demo]
