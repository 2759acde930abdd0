"""``hasten train``: one run of a workload's baseline plus methods, recorded in the store."""

from __future__ import annotations

import sys

import click

from hasten.callbacks.progress import ProgressBar
from hasten.cli.common import echo_json, fmt_seconds, open_store, store_option
from hasten.core.time import Duration
from hasten.methods.registry import build_methods
from hasten.store.environment import capture_environment
from hasten.trainer.result import FitResult
from hasten.workloads.base import Workload, get_workload
from hasten.workloads.resume import new_run, resolve_resume
from hasten.workloads.runner import build_trainer


@click.command()
@click.argument("workload")
@click.option("--method", "-m", "methods", multiple=True, metavar="NAME[:k=v,...]",
              help="Add a speedup method (repeatable), e.g. --method mixup:alpha=0.2.")
@click.option("--duration", "-d", default=None, help="Budget, e.g. 10ep, 2000ba, 6e5sp, 2e5tok. Default: the workload's.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where the data files are. Default: $HASTEN_DATA, then the user cache.")
@store_option
@click.option("--schedule", type=click.Choice(["scaled", "cyclic"]), default="scaled", show_default=True,
              help="scaled: decay over this budget. cyclic: multiplicative cycles, one curve point per cycle.")
@click.option("--resume", default=None, metavar="RUN_ID|latest", help="Continue a run from its last checkpoint.")
@click.option("--checkpoint-interval", default="0.1dur", show_default=True, help="How often to checkpoint.")
@click.option("--no-checkpoints", is_flag=True, help="Do not write checkpoints (the run cannot be resumed).")
@click.option("--deterministic", is_flag=True, help="Use deterministic kernels (bit-exact resume on CPU).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result at the end.")
def train(workload: str, methods: tuple[str, ...], duration: str | None, seed: int, precision: str, device: str,
          data_dir: str | None, store_path: str | None, schedule: str, resume: str | None,
          checkpoint_interval: str, no_checkpoints: bool, deterministic: bool, as_json: bool) -> None:
    """Train WORKLOAD's baseline recipe, plus any --method, and record the run."""
    spec = get_workload(workload)
    build_methods(list(methods))  # bad input fails here, before the store is touched
    if duration is not None:
        Duration(duration)
    store = open_store(store_path)
    if resume:
        placed = resolve_resume(store, resume, spec.name, methods, precision=precision, data_dir=data_dir,
                                deterministic=deterministic)
        methods, duration, seed = placed.methods, placed.duration, placed.seed
        precision, schedule, data_dir = placed.precision, placed.schedule, placed.data_dir
        deterministic = placed.deterministic
    else:
        placed = new_run(store, checkpoints=not no_checkpoints)
    run_id, checkpoint_dir, resume_from = placed.run_id, placed.checkpoint_dir, placed.resume_from

    trainer = build_trainer(
        spec, methods, duration=duration, seed=seed, device=device, precision=precision, data_dir=data_dir,
        store=store, callbacks=[ProgressBar()], schedule=schedule, run_id=run_id,
        checkpoint_dir=checkpoint_dir, checkpoint_interval=None if no_checkpoints else checkpoint_interval,
        resume_from=resume_from, deterministic=deterministic, config={"deterministic": deterministic},
    )
    result = trainer.fit()
    if as_json:
        summary = result.summary()
        summary["env"] = capture_environment(trainer.state.device)
        echo_json(summary)
    else:
        _print_summary(result, spec)
    if result.status == "diverged":
        click.echo(f"error: run {result.run_id} diverged: {result.error}; it is recorded as 'diverged'"
                   " (lower the learning rate or check the methods)", err=True)
        sys.exit(1)


def _print_summary(result: FitResult, spec: Workload) -> None:
    lines = [f"run {result.run_id}: {result.status} after {result.steps} steps"]
    value = result.final.get(spec.metric)
    if value is not None:
        verdict = "reached" if spec.reached(value) else "not reached"
        lines.append(f"  {spec.metric} {value:.4f} (target {spec.target}: {verdict})")
    t = result.timing
    lines.append(f"  train {fmt_seconds(t['train'])} (data wait {fmt_seconds(t['data_wait'])}),"
                 f" eval {fmt_seconds(t['eval'])}, checkpoint {fmt_seconds(t['checkpoint'])},"
                 f" warm-up {fmt_seconds(t['warmup'])}")
    click.echo("\n".join(lines))


COMMANDS = [train]
