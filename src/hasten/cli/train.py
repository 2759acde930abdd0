"""``hasten train``: one run of a workload's baseline plus methods, recorded in the store."""

from __future__ import annotations

import contextlib
import signal
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator

import click

from hasten.callbacks.progress import ProgressBar
from hasten.cli.common import echo_json, fmt_seconds, open_store, store_option
from hasten.core.time import Duration, Interval
from hasten.errors import ConfigError
from hasten.methods.registry import build_methods
from hasten.recipes.recipe import run_arguments
from hasten.store.environment import capture_environment
from hasten.trainer import distributed
from hasten.trainer.result import FitResult
from hasten.trainer.trainer import resolve_device
from hasten.workloads.base import Workload, get_workload
from hasten.workloads.resume import RunPlacement, new_run, refuse_changed_settings, resolve_resume
from hasten.workloads.runner import build_trainer, check_seed


@click.command()
@click.argument("workload")
@click.option(
    "--method",
    "-m",
    "methods",
    multiple=True,
    metavar="NAME[:k=v,...]",
    help="Add a speedup method (repeatable), e.g. --method mixup:alpha=0.2.",
)
@click.option(
    "--recipe",
    "-r",
    "recipe",
    default=None,
    metavar="NAME|FILE",
    help="Train a named recipe (see 'hasten recipes') or a recipe YAML file instead of --method.",
)
@click.option(
    "--duration", "-d", default=None, help="Budget, e.g. 10ep, 2000ba, 6e5sp, 2e5tok. Default: the workload's."
)
@click.option("--seed", type=int, default=0, show_default=True, help="0 to 2**63-1.")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16", "auto"]),
    default=None,
    help="fp32 (default), bf16 autocast, or auto: bf16 only where microbench measures it faster.",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where the data files are. Default: $HASTEN_DATA, then the user cache.",
)
@store_option
@click.option(
    "--schedule",
    type=click.Choice(["scaled", "cyclic"]),
    default="scaled",
    show_default=True,
    help="scaled: decay over this budget. cyclic: multiplicative cycles, one curve point per cycle.",
)
@click.option("--resume", default=None, metavar="RUN_ID|latest", help="Continue a run from its last checkpoint.")
@click.option("--checkpoint-interval", default="0.1dur", show_default=True, help="How often to checkpoint.")
@click.option("--no-checkpoints", is_flag=True, help="Do not write checkpoints (the run cannot be resumed).")
@click.option("--deterministic", is_flag=True, help="Use deterministic kernels (bit-exact resume on CPU).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result at the end.")
def train(
    workload: str,
    methods: tuple[str, ...],
    recipe: str | None,
    duration: str | None,
    seed: int,
    precision: str | None,
    device: str,
    data_dir: str | None,
    store_path: str | None,
    schedule: str,
    resume: str | None,
    checkpoint_interval: str,
    no_checkpoints: bool,
    deterministic: bool,
    as_json: bool,
) -> None:
    """Train WORKLOAD's baseline recipe, plus any --method, and record the run."""
    # Everything the user typed is checked before the store is touched: a refused command writes nothing.
    spec = get_workload(workload)
    build_methods(list(methods))
    recipe_args: dict = {}
    if recipe is not None:
        if methods:
            raise ConfigError("--recipe and --method cannot be combined", "put the extra methods in a recipe file")
        recipe_args = run_arguments(recipe, spec.name)
        methods, duration = tuple(recipe_args["methods"]), duration or recipe_args["duration"]
        precision = precision or recipe_args["precision"]
    precision = precision or "fp32"
    if duration is not None:
        Duration(duration)
    check_seed(seed)
    if resume is not None and not resume.strip():
        raise ConfigError("--resume was given an empty run id", "give a run id from 'hasten runs', or 'latest'")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ConfigError(
            f"data folder {data_dir!r} does not exist",
            "give --data-dir the folder holding the data files, or leave it out",
        )
    if not no_checkpoints:
        Interval(checkpoint_interval)
    store = open_store(store_path)
    store.check_writable()
    # under torchrun every process trains the same run: rank 0 decides which, the others follow
    replicas = distributed.join(resolve_device(device)) if distributed.launched() else distributed.Replicas()
    placed = replicas.on_writer(
        lambda: _place(store, spec.name, resume, methods, precision, data_dir, deterministic, no_checkpoints)
    )
    if resume is not None:
        methods, duration, seed = placed.methods, placed.duration, placed.seed
        precision, schedule, data_dir = placed.precision, placed.schedule, placed.data_dir
        deterministic = placed.deterministic
        if placed.recipe is not None:
            recipe_args = run_arguments(placed.recipe, spec.name)
            methods = tuple(recipe_args["methods"])
    run_id, checkpoint_dir, resume_from = placed.run_id, placed.checkpoint_dir, placed.resume_from

    trainer = build_trainer(
        spec,
        methods,
        duration=duration,
        seed=seed,
        device=device,
        precision=precision,
        data_dir=data_dir,
        store=store,
        callbacks=[ProgressBar()] if replicas.writer else [],
        schedule=schedule,
        run_id=run_id,
        checkpoint_dir=checkpoint_dir,
        checkpoint_interval=None if no_checkpoints else checkpoint_interval,
        resume_from=resume_from,
        deterministic=deterministic,
        config={"deterministic": deterministic},
        workload_params=recipe_args.get("workload_params"),
        recipe=recipe_args.get("recipe"),
    )
    with _signals_interrupt(), _warnings_as_lines():
        try:
            result = trainer.fit()
        except Terminated as exc:
            click.echo(
                f"error: run {trainer.run_id} {exc}; it is recorded as 'interrupted' (continue it with"
                f" 'hasten train {spec.name} --resume {trainer.run_id}')",
                err=True,
            )
            sys.exit(128 + exc.signum)
    if not replicas.writer:  # rank 0 speaks for the run
        sys.exit(1 if result.status == "diverged" else 0)
    if as_json:
        summary = result.summary()
        summary["env"] = capture_environment(trainer.state.device)
        echo_json(summary)
    else:
        _print_summary(result, spec)
    if result.status == "diverged":
        click.echo(
            f"error: run {result.run_id} diverged: {result.error}; it is recorded as 'diverged'"
            " (lower the learning rate or check the methods)",
            err=True,
        )
        sys.exit(1)


def _place(
    store: Any,
    workload: str,
    resume: str | None,
    methods: tuple[str, ...],
    precision: str,
    data_dir: str | None,
    deterministic: bool,
    no_checkpoints: bool,
) -> RunPlacement:
    """The run to train: a new one, or the one ``--resume`` names with its own settings."""
    if resume is None:
        return new_run(store, checkpoints=not no_checkpoints)
    placed = resolve_resume(
        store, resume, workload, methods, precision=precision, data_dir=data_dir, deterministic=deterministic
    )
    params = click.get_current_context().params
    typed = {name: params[name] for name in ("duration", "seed", "precision", "schedule") if _given(name)}
    refuse_changed_settings(placed, typed)
    return placed


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Warnings (e.g. a damaged checkpoint skipped) as one ``warning:`` line each on stderr."""
    with warnings.catch_warnings():
        warnings.showwarning = lambda message, *args, **kwargs: click.echo(f"warning: {message}", err=True)
        yield


def _given(name: str) -> bool:
    """Whether the user typed ``--name`` (as opposed to its default)."""
    source = click.get_current_context().get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP during a run: unwinds like Ctrl-C so the run is recorded 'interrupted'."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """A run told to stop (SIGTERM from a scheduler, SIGHUP from a closed terminal) records that it
    stopped. SIGKILL cannot be caught: readers detect that run's dead process instead."""

    def stop(signum: int, frame: object) -> None:
        raise Terminated(signum)

    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous[signum] = signal.signal(signum, stop)
        except ValueError:  # not the main thread (e.g. called from a test runner thread)
            pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _print_summary(result: FitResult, spec: Workload) -> None:
    lines = [f"run {result.run_id}: {result.status} after {result.steps} steps"]
    value = result.final.get(spec.metric)
    if value is not None:
        verdict = "reached" if spec.reached(value) else "not reached"
        lines.append(f"  {spec.metric} {value:.4f} (target {spec.target}: {verdict})")
    t = result.timing
    lines.append(
        f"  train {fmt_seconds(t['train'])} (data wait {fmt_seconds(t['data_wait'])}),"
        f" eval {fmt_seconds(t['eval'])}, checkpoint {fmt_seconds(t['checkpoint'])},"
        f" warm-up {fmt_seconds(t['warmup'])}"
        + (f"; gradient all-reduce {fmt_seconds(t['communication'])}" if "communication" in t else "")
    )
    click.echo("\n".join(lines))


COMMANDS = [train]
