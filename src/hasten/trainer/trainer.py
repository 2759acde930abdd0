"""The Trainer: one loop, read top to bottom, that fires events and times itself honestly."""

from __future__ import annotations

import contextlib
import math
import os
import random
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.callback import Callback
from hasten.core.composition import check_composition
from hasten.core.engine import Engine
from hasten.core.event import Event
from hasten.core.metrics import CrossEntropy, Metric
from hasten.core.plan import RunPlan
from hasten.core.state import State
from hasten.core.time import Duration, Interval, Time, TimeUnit
from hasten.errors import ConfigError
from hasten.optim.factory import build_optimizer
from hasten.optim.scheduling import apply_schedule, bind_scheduler, step_scheduler
from hasten.store.records import EvalPoint
from hasten.trainer import checkpoint as ckpt
from hasten.trainer import distributed, recording, resume
from hasten.trainer.guard import Diverged, LossGuard, check_weights
from hasten.trainer.result import FitResult
from hasten.trainer.sources import as_source, batch_size_of, measure_rates, move_to, split_micro_batches, tokens_in
from hasten.trainer.timing import TimingBuckets

PRECISIONS = ("fp32", "bf16")


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA device is available", "use --device cpu or auto")
    return distributed.local_device(device)  # under torchrun: this process's own GPU


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every target element: classification and language modelling alike."""
    return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]).float(), targets.reshape(-1))


class Trainer:
    """Train ``model`` for ``max_duration`` with ``algorithms`` applied, timing every bucket.

    ``optimizer`` is an optimizer or a factory ``model -> optimizer``; a factory is built
    after the algorithms' INIT surgery, so it sees the final parameters (prefer it).
    ``scheduler`` is a hasten schedule ``(step, total_steps) -> lr multiplier``, a torch
    LR scheduler (stepped every optimizer step), or a factory ``optimizer -> scheduler``.
    Intervals (``eval_interval``, ``checkpoint_interval``) are times such as ``"1ep"``,
    ``"250ba"`` or ``"0.25dur"``; ``eval_interval`` may also be a list of times.
    Started by ``torchrun`` (several processes) the run is data-parallel: see
    ``hasten.trainer.distributed`` for what that changes.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Iterable,
        eval_data: Iterable | None = None,
        optimizer: torch.optim.Optimizer | Callable[[nn.Module], torch.optim.Optimizer] | None = None,
        scheduler: Any = None,
        loss_fn: Callable[[Any, torch.Tensor], torch.Tensor] | None = None,
        max_duration: str | Time = "1ep",
        eval_interval: str | Time | Sequence[str | Time] | None = None,
        algorithms: Sequence[Algorithm] = (),
        callbacks: Sequence[Callback] = (),
        precision: str = "fp32",
        device: str | torch.device = "auto",
        grad_accum: int = 1,
        seed: int = 0,
        deterministic: bool = False,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_interval: str | Time | None = None,
        store: Any = None,
        *,
        metrics: dict[str, Metric] | Sequence[Metric] | None = None,
        grad_clip_norm: float | None = None,
        run_id: str | None = None,
        run_info: dict[str, Any] | None = None,
        resume_from: str | os.PathLike | None = None,
        warmup_steps: int = 0,
        keep_checkpoints: int = 2,
        eval_at_start: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
        if grad_accum < 1:
            raise ConfigError(f"grad_accum must be >= 1, got {grad_accum}")
        check_composition(algorithms)
        if distributed.launched():
            distributed.refuse_unsupported(algorithms)
        seed_everything(seed)
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        device = resolve_device(device)
        self.replicas = distributed.join(device)
        self.deterministic = deterministic
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.checkpoint_interval = Interval(checkpoint_interval) if checkpoint_interval else None
        self.keep_checkpoints = keep_checkpoints
        self.resume_from = resume_from
        self.store = store if self.replicas.writer else None  # rank 0 records the run
        self.eval_at_start = eval_at_start
        self.evals: list[EvalPoint] = []
        self.run_id = run_id or uuid.uuid4().hex[:10]
        self._status = "running"
        self._run_opened = False  # the store row is written at the first step, eval or checkpoint

        train_source = self.replicas.shard_train(as_source(train_data, seed))
        self.replicas.check_batch(train_source)
        factory = optimizer if callable(optimizer) and not isinstance(optimizer, torch.optim.Optimizer) else None
        metric_map = self._metric_map(metrics)
        self.state = State(
            model=model.to(device),
            loss_fn=loss_fn or default_loss,
            max_duration=Duration(max_duration),
            train_data=train_source,
            eval_data=self.replicas.shard_eval(eval_data, metric_map),
            device=device,
            optimizer=None if factory else optimizer,  # type: ignore[arg-type]
            optimizer_factory=factory,
            scheduler=scheduler,
            precision=precision,
            grad_accum=grad_accum,
            grad_clip_norm=grad_clip_norm,
            seed=seed,
            metrics=metric_map,
            batches_per_epoch=len(train_source),
            timer=TimingBuckets(device),
            warmup_steps_remaining=warmup_steps,
        )
        self.state.run_info = recording.describe_run(run_info, self.state, algorithms, self.checkpoint_dir)
        if self.replicas.active:
            self.state.run_info["config"]["world_size"] = self.replicas.world_size
        self._eval_times = self._parse_intervals(eval_interval)
        self.engine = Engine(self.state, algorithms, callbacks)
        self.engine.run_event(Event.INIT)  # surgery happens here, before the optimizer is built

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _metric_map(metrics: dict[str, Metric] | Sequence[Metric] | None) -> dict[str, Metric]:
        if metrics is None:
            return {"loss": CrossEntropy()}
        if isinstance(metrics, dict):
            return dict(metrics)
        return {m.name: m for m in metrics}

    @staticmethod
    def _parse_intervals(interval: Any) -> list[Time]:
        if interval is None:
            return []
        if isinstance(interval, (str, Time)):
            return [Time.parse(interval)]
        return [Time.parse(t) for t in interval]

    @property
    def total_steps(self) -> int:
        """Optimizer steps in the run (assuming constant batch shape), for schedules."""
        return self.plan.total_steps

    @property
    def plan(self) -> RunPlan:
        """The run plan (``state.plan``), made when ``fit`` starts."""
        if self.state.plan is None:
            raise RuntimeError("the run is planned when fit() starts")
        return self.state.plan

    # --------------------------------------------------------------- the loop
    def fit(self) -> FitResult:
        """Train to ``max_duration``. Returns the eval series and timing buckets; a diverged
        run returns with ``status == "diverged"`` (it is recorded, never dropped)."""
        state, timer = self.state, self.state.timer
        state.scheduler = bind_scheduler(state.scheduler, build_optimizer(state))
        self._forward = self.replicas.wrap(state.model, state.device, state.timer)  # DDP, or the model itself
        if (own_seed := self.replicas.stream_seed(state.seed)) is not None:
            seed_everything(own_seed)  # ranks > 0: their own augmentation and dropout streams
        state.plan = RunPlan.make(
            measure_rates(state.train_data), state.max_duration, self._eval_times, self.checkpoint_interval
        )
        if self.resume_from is not None:
            self._load(self.resume_from)
        self._guard = LossGuard(state.device)
        timer.start("train")
        try:
            self.engine.run_event(Event.FIT_START)
            if self.eval_at_start and state.timestamp.batch == 0:
                self.evaluate()
            while not self._done():
                self._train_epoch()
            self._check_divergence(final=True)
            if not self.evals or self.evals[-1].step != state.timestamp.batch:
                self.evaluate()
            if self.checkpoint_dir is not None:
                self.save_checkpoint()
            self._status = "completed"
        except Diverged as exc:
            self._status = "diverged"
            self._error = str(exc)
        except KeyboardInterrupt as exc:
            self._finish("interrupted", str(exc) or "interrupted by the user")
            raise
        except ConfigError as exc:
            if not self._run_opened:  # bad input found before the first step: nothing was written
                timer.stop()
                raise
            self._finish("failed", f"{type(exc).__name__}: {exc}")
            raise
        except BaseException as exc:
            self._finish("failed", self.replicas.describe_failure(exc))
            raise
        self.engine.run_event(Event.FIT_END)
        timer.stop()
        return self._finish(self._status, getattr(self, "_error", None))

    def _train_epoch(self) -> None:
        """Run batches until the epoch ends or the run is done; evaluate and checkpoint when due."""
        state = self.state
        if state.timestamp.batch_in_epoch == 0:
            self.engine.run_event(Event.EPOCH_START)
        batches = iter(state.train_data.batches(state.timestamp.epoch, state.timestamp.batch_in_epoch))
        epoch_complete = False
        while not self._done():
            if not self._train_batch(batches):
                epoch_complete = True  # the source ran out early: a short epoch
                break
            if self._due(self.plan.eval_every, self.plan.eval_steps):
                self.evaluate()
            if state.timestamp.batch_in_epoch >= state.batches_per_epoch:
                epoch_complete = True
                break
            if self._checkpoint_due():
                self.save_checkpoint()
        if epoch_complete:
            self._end_epoch()
            if self._checkpoint_due():
                self.save_checkpoint()

    def _train_batch(self, batches: Any) -> bool:
        """Fetch one batch and take one optimizer step. False if the source is exhausted."""
        state, timer = self.state, self.state.timer
        in_warmup = state.warmup_steps_remaining > 0
        with timer.bucket("warmup") if in_warmup else contextlib.nullcontext():
            self.engine.run_event(Event.BEFORE_DATALOADER)
            with timer.data_wait():
                batch = next(batches, None)
            if batch is None:
                return False
            state.batch = move_to(batch, state.device)
            samples, tokens = batch_size_of(state.batch), tokens_in(state.batch, state.train_data)
            self.engine.run_event(Event.AFTER_DATALOADER)
            self.engine.run_event(Event.BATCH_START)
            samples, tokens = self._train_step(samples, tokens)
            state.timestamp.batch += 1
            state.timestamp.batch_in_epoch += 1
            state.timestamp.sample += samples
            state.timestamp.token += tokens
            self.engine.run_event(Event.BATCH_END)
        if in_warmup:
            state.warmup_steps_remaining -= 1
        if not self._run_opened:
            self._open_run()  # the first step ran, so the input was good: now the run is recorded
        return True

    def _end_epoch(self) -> None:
        state = self.state
        self.engine.run_event(Event.EPOCH_END)
        state.timestamp.epoch += 1
        state.timestamp.batch_in_epoch = 0

    def _train_step(self, samples: int, tokens: int) -> tuple[int, int]:
        """Forward, loss and backward per micro-batch, then one optimizer step. Returns the step's
        samples and tokens over all processes (the arguments are this process's)."""
        state = self.state
        full_batch = state.batch
        micro_batches = split_micro_batches(full_batch, state.grad_accum)
        total = batch_size_of(full_batch)
        state.optimizer.zero_grad(set_to_none=True)  # type: ignore[union-attr]  # built in fit()
        step_loss = torch.zeros((), device=state.device)
        replay: list[tuple[Any, Any, Any, float]] = []  # what each loss saw, for closure optimizers
        for index, micro in enumerate(micro_batches):
            state.batch = micro
            share = batch_size_of(micro) / total
            with self.replicas.accumulating(self._forward, last=index == len(micro_batches) - 1):
                self.engine.run_event(Event.BEFORE_FORWARD)
                with state.autocast():
                    state.outputs = self._forward(state.inputs)
                self.engine.run_event(Event.AFTER_FORWARD)
                self.engine.run_event(Event.BEFORE_LOSS)
                with state.autocast():
                    state.loss = state.loss_fn(state.outputs, state.targets)
                replay.append((state.inputs, state.targets, state.loss_fn, share))
                self.engine.run_event(Event.AFTER_LOSS)
                self.engine.run_event(Event.BEFORE_BACKWARD)
                (state.loss * share).backward()
                self.engine.run_event(Event.AFTER_BACKWARD)
            step_loss += state.loss.detach().float() * share
        state.batch = full_batch
        step_loss, samples, tokens = self.replicas.step_totals(step_loss, samples, tokens)
        self._guard.observe(step_loss, state.timestamp.batch + 1)  # NaN guard: no per-step sync on GPUs
        state.train_loss = self._guard.last_loss
        self._clip_gradients()
        apply_schedule(state)
        self.engine.run_event(Event.BEFORE_OPTIMIZER_STEP)
        if getattr(state.optimizer, "requires_closure", False):
            # torch types a closure as returning float; ours returns the loss tensor, as SAM expects
            state.optimizer.step(closure=lambda: self._closure(replay))  # type: ignore[union-attr, arg-type, return-value]
        else:
            state.optimizer.step()  # type: ignore[union-attr]  # built in fit()
        self.engine.run_event(Event.AFTER_OPTIMIZER_STEP)
        step_scheduler(state.scheduler)
        return samples, tokens

    def _check_divergence(self, final: bool = False) -> None:
        """Read the loss guard now (before evaluations and checkpoints); at the end also the weights,
        which the last step's update may have broken after its loss was read."""
        guard = getattr(self, "_guard", None)
        if guard is not None:
            guard.check()
            self.state.train_loss = guard.last_loss
        if final and self.state.timestamp.batch > 0:
            check_weights(self.state.model.parameters(), self.state.timestamp.batch)

    def _closure(self, replay: list[tuple[Any, Any, Any, float]]) -> torch.Tensor:
        """Recompute loss and gradients on the current batch (for SAM-like optimizers); fires no events.
        Each micro-batch is replayed as its loss saw it: inputs after BEFORE_FORWARD transforms
        (MixUp, CutMix) and the loss function then in use (their mixed loss)."""
        state = self.state
        loss_sum = torch.zeros((), device=state.device)
        for inputs, targets, loss_fn, share in replay:
            with state.autocast():
                loss = loss_fn(state.model(inputs), targets) * share
            loss.backward()
            loss_sum += loss.detach()
        self._clip_gradients()  # the gradient the optimizer applies is this one, so it is clipped too
        return loss_sum

    def _clip_gradients(self) -> None:
        if self.state.grad_clip_norm:
            torch.nn.utils.clip_grad_norm_(self.state.model.parameters(), self.state.grad_clip_norm)

    # ------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, float]:
        """Evaluate on all of ``eval_data``; its time goes to the ``eval`` bucket, never to training."""
        state = self.state
        self._check_divergence()
        self.replicas.share_buffers(state.model)  # every rank evaluates the model rank 0 records
        with state.timer.bucket("eval"):
            self.engine.run_event(Event.EVAL_START)
            results = self._run_eval() if state.eval_data is not None else {}
            state.eval_results = results
            self.engine.run_event(Event.EVAL_END)
        point = EvalPoint(
            step=state.timestamp.batch,
            samples=state.timestamp.sample,
            tokens=state.timestamp.token,
            epoch=state.elapsed(TimeUnit.EPOCH),
            train_time_s=self.replicas.slowest({"train": state.timer.read("train")}, state.device)["train"],
            metrics=dict(results),
        )
        self.evals.append(point)
        if self.store is not None:
            self._open_run()
            self.store.add_eval(self.run_id, point)
        return results

    def _run_eval(self) -> dict[str, float]:
        state = self.state
        was_training = state.model.training
        state.model.eval()
        for metric in state.metrics.values():
            metric.reset()
        with torch.no_grad(), state.autocast():
            for batch in state.eval_data:  # type: ignore[union-attr]  # evaluate() checks it is set
                state.eval_batch = move_to(batch, state.device)
                self.engine.run_event(Event.EVAL_BATCH_START)
                state.eval_outputs = state.eval_forward(state.model, state.eval_batch[0])
                for metric in state.metrics.values():
                    metric.update(state.eval_outputs, state.eval_batch[1])
                self.engine.run_event(Event.EVAL_BATCH_END)
        self.replicas.sum_metrics(state.metrics, state.device)  # each process evaluated its shard
        state.model.train(was_training)
        return {name: metric.compute() for name, metric in state.metrics.items()}

    # -------------------------------------------------------------- schedule
    def _done(self) -> bool:
        state = self.state
        return state.stop_requested or state.elapsed(state.max_duration.unit) >= state.max_duration.value

    def _due(self, every: float | None, at_steps: frozenset[int] = frozenset()) -> bool:
        """True if the step just taken crossed a multiple of ``every`` or is one of ``at_steps``."""
        step = self.state.timestamp.batch
        if step in at_steps:
            return True
        if not every or every <= 0:
            return False
        return math.floor(step / every + 1e-9) > math.floor((step - 1) / every + 1e-9)

    def _checkpoint_due(self) -> bool:
        return self.checkpoint_dir is not None and not self._done() and self._due(self.plan.checkpoint_every)

    # ----------------------------------------------------------- checkpoints
    def save_checkpoint(self) -> Path:
        """Everything needed to continue bit for bit; time spent here is the ``checkpoint`` bucket."""
        state = self.state
        if self.checkpoint_dir is None:
            raise ConfigError("no checkpoint_dir was given", "pass checkpoint_dir= to the Trainer")
        self._check_divergence()  # never write a checkpoint past a divergence the guard has not read yet
        self.replicas.share_buffers(state.model)
        with state.timer.bucket("checkpoint"):
            self.engine.run_event(Event.CHECKPOINT)
            path = ckpt.checkpoint_path(self.checkpoint_dir, state.timestamp.batch)
            rank_states = self.replicas.gather_rank_states(self.engine.algorithms)  # collective
            if self.replicas.writer:
                payload = resume.capture(self.run_id, state, self.engine.algorithms, self.evals)
                ckpt.save_checkpoint(path, self.replicas.stamp(payload, rank_states))
                ckpt.prune_checkpoints(self.checkpoint_dir, self.keep_checkpoints)
        totals = self.replicas.slowest(state.timer.state_dict(), state.device)
        if self.store is not None:
            self._open_run()
            with state.timer.paused():
                recording.record_progress(self.store, self.run_id, state, totals)
        return path

    def _load(self, source: str | os.PathLike) -> None:
        payload = ckpt.load_checkpoint(source, required=resume.REQUIRED)
        self.replicas.check_world(payload, self.run_id)
        self.evals, self.run_id = resume.restore(
            state=self.state, algorithms=self.engine.algorithms, payload=payload, run_id=self.run_id
        )
        self.replicas.restore_rank_state(payload, self.engine.algorithms)

    # ------------------------------------------------------------ the record
    def _open_run(self) -> None:
        """Write the run's row once; its time is charged to no bucket."""
        if self.store is not None and not self._run_opened:
            with self.state.timer.paused():
                recording.open_run(self.store, self.run_id, self.state)
            self._run_opened = True

    def _finish(self, status: str, error: str | None) -> FitResult:
        state = self.state
        timing = state.timer.state_dict()
        if status in ("completed", "diverged"):  # every rank got here; after a failure, collectives could hang
            timing = self.replicas.slowest(timing, state.device)
        result = FitResult(
            run_id=self.run_id,
            status=status,
            steps=state.timestamp.batch,
            samples=state.timestamp.sample,
            tokens=state.timestamp.token,
            epochs=state.elapsed(TimeUnit.EPOCH),
            timing=timing,
            evals=list(self.evals),
            final=dict(self.evals[-1].metrics) if self.evals and status == "completed" else {},
            error=error,
            run_info=state.run_info,
        )
        if self.store is not None:
            self._open_run()
            recording.finish_run(self.store, result)
        return result
