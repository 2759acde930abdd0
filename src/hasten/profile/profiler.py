"""The profiler: wrap any PyTorch training loop, get a verdict with evidence and the fix.

    prof = Profiler()
    for batch in prof.wrap(loader):     # times the waits for data
        with prof.step():               # one training step
            ...
    report = prof.report()

Steps go through four windows, in order:

1. ``skip`` warm-up steps, not measured (allocator, caches, compilation);
2. *timed* steps, at least ``steps`` of them and at least ``min_time`` seconds: only host
   clocks around ``next()`` and the step, so their speed is the loop's own (step time and
   the data-wait share come from here; the time floor averages out a busy machine);
3. ``record`` *recorded* steps under ``torch.profiler``: where the time inside a step goes,
   read from the fastest of them (the one other processes disturbed least);
4. one *census* step under a dispatch mode that counts operations, FLOPs and bytes.

After that the profiler does nothing but count steps, so the loop can go on at full speed.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Iterable, Iterator

import torch

from hasten.errors import ConfigError
from hasten.profile.applicability import inspect_loop
from hasten.profile.census import CensusRecorder, StepCensus
from hasten.profile.evidence import StepTimes, gather_evidence
from hasten.profile.opclasses import DATA_SCOPE
from hasten.profile.peaks import Peaks, get_peaks
from hasten.profile.recommend import recommend_for_loop
from hasten.profile.report import Report, build_advice
from hasten.profile.trace import STEP_SCOPE, summarize_trace
from hasten.profile.verdict import decide, explain

WARMUP, TIMED, RECORDED, CENSUS, DONE = "warmup", "timed", "recorded", "census", "done"


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Kineto prints start/stop lines from C++ straight to fd 2; keep them off the user's terminal."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _batch_size(batch: Any) -> int | None:
    first = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    return int(first.shape[0]) if isinstance(first, torch.Tensor) and first.ndim > 0 else None


class Profiler:
    """Profile a training loop and say what bounds it.

    ``device``: where the steps run (default: CUDA if available, else CPU). ``skip``,
    ``steps``, ``record``: the warm-up, timed and recorded windows, in steps; ``min_time``:
    the least seconds the timed window lasts. ``count_ops``:
    run the census step (FLOPs, bytes). ``peaks``: this device's roofs (default: cached, or
    measured quickly). ``modality``/``exclude``: leave out methods that do not fit the data or
    that the loop already uses. ``model`` (and ``example_input``, one batch of inputs; by default
    the first batch ``wrap`` sees): recommend only methods that can act on this model, and not the
    switches the loop already uses (bf16, compile, channels-last).
    """

    def __init__(
        self,
        device: str | torch.device | None = None,
        *,
        skip: int = 3,
        steps: int = 10,
        record: int = 5,
        min_time: float = 1.0,
        count_ops: bool = True,
        peaks: Peaks | None = None,
        modality: str | None = None,
        exclude: Iterable[str] = (),
        model: torch.nn.Module | None = None,
        example_input: Any = None,
    ) -> None:
        for name, value, least in (("skip", skip, 0), ("steps", steps, 2), ("record", record, 1)):
            if not isinstance(value, int) or value < least:
                raise ConfigError(
                    f"Profiler {name}={value!r} must be an integer >= {least}",
                    "e.g. Profiler(skip=3, steps=10, record=5)",
                )
        if not isinstance(min_time, (int, float)) or min_time < 0:
            raise ConfigError(f"Profiler min_time={min_time!r} must be seconds >= 0", "e.g. Profiler(min_time=1.0)")
        if device is None or str(device) == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.skip, self.steps, self.record, self.min_time, self.count_ops = skip, steps, record, min_time, count_ops
        self.peaks = peaks
        self.modality = modality
        self.exclude = tuple(exclude)
        self.model = model
        self.example_input = example_input
        self.example_source: tuple[Any, Any] | None = None  # (batch source, device): inputs drawn when reporting
        self.completed = 0
        self.phase = WARMUP if skip > 0 else TIMED
        self._in_phase = 0
        self._timed_since: float | None = None
        self.step_budget: int | None = None  # steps the loop will run, when known (len of the loader)
        self.times = StepTimes()
        self._events: list[Any] | None = None
        self._torch_profiler: Any = None
        self._census: CensusRecorder | None = None
        self._census_result: StepCensus | None = None
        self._step_scope: Any = None
        self._data_scope: Any = None
        self._data_started: float | None = None
        self._wait = 0.0
        self._step_started: float | None = None
        self._last_end: float | None = None
        self._samples: int | None = None
        self._step_context = _Step(self)

    # ------------------------------------------------------------- windows
    @property
    def steps_needed(self) -> int:
        """The fewest steps a complete report needs (more if ``min_time`` is not reached)."""
        return self.skip + self.steps + self.record + (1 if self.count_ops else 0)

    @property
    def done(self) -> bool:
        return self.phase == DONE

    def _advance(self, now: float) -> None:
        """After a step: move to the next window when this one is full."""
        self._in_phase += 1
        if self.phase == WARMUP and self._in_phase >= self.skip:
            self._enter(TIMED)
        elif self.phase == TIMED and (
            (self._in_phase >= self.steps and now - (self._timed_since or now) >= self.min_time)
            or (self._in_phase >= 2 and self._steps_left() <= self.record + self.count_ops)
        ):
            self._enter(RECORDED)
            self._start_torch_profiler()
        elif self.phase == RECORDED and self._in_phase >= self.record:
            self._stop_torch_profiler()
            self._enter(CENSUS if self.count_ops else DONE)
        elif self.phase == CENSUS:
            self._enter(DONE)

    def extend_warmup(self, steps: int) -> None:
        """Skip at least ``steps`` steps before timing (e.g. a compile warm-up); only before timing starts."""
        if self.completed == 0 and steps > self.skip:
            self.skip = steps
            self.phase = WARMUP

    def _enter(self, phase: str) -> None:
        self.phase, self._in_phase = phase, 0

    def _steps_left(self) -> float:
        """Steps the loop has left, if known: the timed window ends early to leave room for the rest."""
        return self.step_budget - self.completed if self.step_budget is not None else float("inf")

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # ------------------------------------------------------------ the hooks
    def wrap(self, iterable: Iterable) -> Iterator[Any]:
        """Yield from ``iterable``, timing each wait for the next item. If it has a length, the
        timed window ends early enough for the recorded and census steps to fit."""
        try:
            self.step_budget = self.completed + len(iterable)  # type: ignore[arg-type]
        except TypeError:
            pass
        iterator = iter(iterable)
        while self.phase != DONE:
            self.data_begin()
            try:
                batch = next(iterator)
            except StopIteration:
                self.data_end()
                return
            self.data_end(batch)
            yield batch
        yield from iterator  # done: no per-batch cost at all

    def step(self) -> "_Step":
        """Mark one training step (forward, backward, optimizer): ``with prof.step(): ...``."""
        return self._step_context

    def data_begin(self) -> None:
        phase = self.phase
        if phase in (DONE, CENSUS) or self._data_started is not None:
            return
        if self._last_end is None:
            self._last_end = self._timed_since = time.perf_counter()
        if phase == RECORDED and self._torch_profiler is not None:
            self._data_scope = torch.profiler.record_function(DATA_SCOPE)
            self._data_scope.__enter__()
        self._data_started = time.perf_counter()

    def data_end(self, batch: Any = None) -> None:
        if self._data_started is None:
            return
        self._wait += time.perf_counter() - self._data_started
        self._data_started = None
        if self._data_scope is not None:
            self._data_scope.__exit__(None, None, None)
            self._data_scope = None
        if batch is not None and self.phase == TIMED:
            self._samples = _batch_size(batch)
        if batch is not None and self.example_input is None and self.model is not None:
            first = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
            if isinstance(first, torch.Tensor):
                self.example_input = first[:2]

    def step_begin(self, samples: int | None = None) -> None:
        phase = self.phase
        if phase == DONE:
            return
        self.data_end()
        if self._last_end is None:
            self._last_end = self._timed_since = time.perf_counter()
        if samples is not None:
            self._samples = samples
        if phase == RECORDED:
            self._sync()
            self._step_scope = torch.profiler.record_function(STEP_SCOPE)
            self._step_scope.__enter__()
        elif phase == CENSUS:
            self._census = CensusRecorder()
            self._census.__enter__()
        self._step_started = time.perf_counter()

    def step_end(self) -> None:
        phase = self.phase
        if phase == DONE or self._step_started is None:
            self.completed += 1
            return
        if phase == RECORDED and self._step_scope is not None:
            self._sync()
            self._step_scope.__exit__(None, None, None)
            self._step_scope = None
        elif phase == CENSUS and self._census is not None:
            self._census.__exit__(None, None, None)
            self._census_result = self._census.result
            self._census = None
        now = time.perf_counter()
        if phase == TIMED:
            self.times.waits.append(self._wait)
            self.times.bodies.append(now - self._step_started)
            self.times.iterations.append(now - (self._last_end or self._step_started))
            if self._samples:
                self.times.samples.append(self._samples)
        self._wait, self._step_started, self._last_end = 0.0, None, now
        self.completed += 1
        self._advance(now)
        if phase == WARMUP and self.phase == TIMED:
            self._sync()  # the timed window starts with an idle device
            self._last_end = self._timed_since = time.perf_counter()

    # ---------------------------------------------------------- the trace
    def _start_torch_profiler(self) -> None:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU]
        if self.device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        self._torch_profiler = profile(activities=activities)
        with _quiet_native_stderr():
            self._torch_profiler.__enter__()

    def _stop_torch_profiler(self) -> None:
        if self._torch_profiler is None:
            return
        for scope in (self._step_scope, self._data_scope):
            if scope is not None:
                scope.__exit__(None, None, None)
        self._step_scope = self._data_scope = None
        with _quiet_native_stderr():
            self._torch_profiler.__exit__(None, None, None)
        self._events = list(self._torch_profiler.events())
        self._torch_profiler = None

    def finish(self) -> None:
        """Stop anything still running (a loop that ended inside a window)."""
        self._stop_torch_profiler()
        if self._census is not None:
            self._census.__exit__(None, None, None)
            self._census = None

    # ----------------------------------------------------------- the answer
    def _too_few_steps(self) -> str:
        """Which window the loop ended in, so the user knows which condition was not met."""
        seen = f"the profiler saw {self.completed} steps, too few for a report"
        if self.completed <= self.skip:
            return f"{seen}: all of them were warm-up (skip={self.skip}), and it needs at least 2 timed steps after"
        timed = len(self.times)
        if timed < 2:
            return f"{seen}: {self.skip} warm-up and {timed} timed; it needs at least 2 timed and 1 recorded step"
        seconds = sum(self.times.iterations)
        if self.phase == TIMED and timed >= self.steps:
            return (
                f"{seen}: the timed window had its {self.steps} steps but lasts at least min_time="
                f"{self.min_time:g}s and had run {seconds:.2f}s over {timed} steps when the loop ended, "
                "so no step was recorded"
            )
        return (
            f"{seen}: {self.skip} warm-up and {timed} timed, none recorded; it needs at least {self.steps} "
            f"timed steps lasting min_time={self.min_time:g}s, then 1 recorded ({self.steps_needed} steps "
            "for everything when the steps are quick)"
        )

    def _too_few_steps_hint(self) -> str:
        if self.phase == TIMED and len(self.times) >= self.steps:
            return (
                "run more steps, pass a smaller min_time= (--min-time), or iterate with prof.wrap(loader) over "
                "a loader with a length so the timed window ends in time"
            )
        return "run more steps (and call prof.step() in the loop), or pass smaller skip=/steps=/record= to Profiler"

    def report(self) -> Report:
        """The verdict, its evidence and the recommended methods."""
        self.finish()
        census = self._census_result if self._census_result is not None and not self._census_result.error else None
        names = census.names if census is not None else None
        trace = summarize_trace(self._events or [], names, on_device=self.device.type == "cuda")
        if len(self.times) < 2 or trace.steps == 0:
            raise ConfigError(self._too_few_steps(), self._too_few_steps_hint())
        peaks = self.peaks or get_peaks(self.device)
        evidence = gather_evidence(self.times, trace, census, peaks, device_type=self.device.type)
        if self._census_result is not None and self._census_result.error:
            evidence["notes"].insert(0, f"the operation census failed ({self._census_result.error})")
        decision = decide(evidence["shares"])
        facts = inspect_loop(self.model, example_input=self._example(), census=census, modality=self.modality)
        recommendations, left_out = recommend_for_loop(
            decision.verdict,
            evidence,
            secondary=decision.secondary,
            exclude=self.exclude,
            facts=facts,
            bf16_speedup=peaks.peak_flops("bfloat16") / peaks.peak_flops("float32"),
        )
        return Report(
            verdict=decision.verdict,
            evidence=evidence,
            recommendations=recommendations,
            left_out=left_out,
            explanation=explain(decision.verdict, evidence),
            secondary=decision.secondary,
            rule=decision.rule,
            advice=build_advice(decision.verdict, decision.secondary, peaks),
        )

    def _example(self) -> Any:
        """One small batch of model inputs for the residual probe: given, seen by ``wrap``, or drawn
        from the Trainer's source now (after timing, so the draw costs the run nothing)."""
        if self.example_input is None and self.example_source is not None and self.model is not None:
            from hasten.methods.surgery import sample_inputs

            source, device = self.example_source
            try:
                self.example_input = sample_inputs(source, 2).to(device)
            except Exception:  # a source that cannot give a sample: residual connections stay unchecked
                self.example_source = None
        return self.example_input


class _Step:
    """``with prof.step():`` as a plain object: cheaper per step than a generator context."""

    __slots__ = ("profiler",)

    def __init__(self, profiler: Profiler) -> None:
        self.profiler = profiler

    def __enter__(self) -> None:
        self.profiler.step_begin()

    def __exit__(self, *exc: Any) -> None:
        self.profiler.step_end()
