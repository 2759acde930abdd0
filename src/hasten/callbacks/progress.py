"""Progress: a live bar with loss, metric and throughput on a terminal; plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from hasten.core.callback import Callback
from hasten.core.state import State


class ProgressBar(Callback):
    """Shows training progress on ``stream`` (stderr by default, so ``--json`` stdout stays clean).

    On a TTY it draws a rich progress bar; elsewhere it prints a line every ``every``
    fraction of the run and after each evaluation.

    It never reads a device tensor: the loss shown is ``state.train_loss``, the float the
    Trainer's NaN guard last read (every step on a CPU, every 32 steps and before evaluations
    on a GPU), so drawing progress adds no host-device synchronization.
    """

    def __init__(self, stream: IO[str] | None = None, every: float = 0.1, label: str = "") -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.label = label
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._progress: Any = None
        self._task: Any = None
        self._next_report = every
        self._metric = ""

    def _throughput(self, state: State) -> float:
        seconds = state.timer.elapsed("train") + state.timer.elapsed("warmup")
        return state.timestamp.sample / seconds if seconds > 0 else 0.0

    def on_fit_start(self, state: State) -> None:
        total = state.plan.total_steps if state.plan is not None else 0
        name = self.label or f"{state.run_info.get('workload', '')} {state.run_info.get('recipe', '')}".strip()
        if self._tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(name, total=total, completed=state.timestamp.batch, info="")
        else:
            self._print(f"{name}: {total} steps")
        self._start = time.perf_counter()

    def on_batch_end(self, state: State) -> None:
        if self._progress is not None:
            if state.timestamp.batch % 5 == 0 or state.progress >= 1:
                info = f"loss {state.train_loss:.4f} {self._metric} {self._throughput(state):,.0f} sp/s"
                self._progress.update(self._task, completed=state.timestamp.batch, info=info)
        elif state.progress + 1e-9 >= self._next_report:
            self._next_report += self.every
            self._print(
                f"step {state.timestamp.batch}/{state.plan.total_steps if state.plan is not None else '?'} ({state.progress:.0%})"
                f" loss {state.train_loss:.4f} | {self._throughput(state):,.0f} samples/s"
                f" | train {state.timer.elapsed('train'):.1f}s"
            )

    def on_eval_end(self, state: State) -> None:
        self._metric = " ".join(f"{k} {v:.4f}" for k, v in state.eval_results.items())
        if self._progress is None:
            self._print(f"eval at step {state.timestamp.batch}: {self._metric}")

    def on_fit_end(self, state: State) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=state.timestamp.batch)
            self._progress.stop()
            self._progress = None

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)
