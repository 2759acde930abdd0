"""Read a ``torch.profiler`` trace of the recorded steps into time per operation.

The profiler records nested events: ``aten::linear`` contains ``aten::addmm``, which contains
an internal ``aten::copy_``. To count each piece of work once, time is charged to the
*outermost* event that names an operation the step's census saw (or, without a census, the
outermost ``aten::`` event); whatever a step spends outside such events is framework time:
Python, the autograd engine's bookkeeping, composite wrappers, the profiler's own cost.

On a GPU the times are device (kernel) times, and the device's busy time is the union of
kernel intervals inside the steps, so idle time, while the device waits for the host, shows.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from hasten.profile.opclasses import COMMUNICATION, DATA_SCOPE, classify, is_communication

STEP_SCOPE = "hasten::step"
_OP_NAMESPACES = ("aten::", "c10d::", "_c10d_functional::", "c10d_functional::")
_CPU = "CPU"
_ANNOTATIONS = ("ProfilerStep#", "Optimizer.step#", "Optimizer.zero_grad#", "hasten::")


@dataclass
class OpTime:
    """One operation group's time in each recorded step (host or device seconds)."""

    name: str
    op_class: str
    calls: int = 0
    per_step: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(self.per_step)


@dataclass
class TraceSummary:
    """The recorded window, step by step (lists hold one value per recorded step)."""

    bodies: list[float]
    data_s: float
    ops: dict[tuple[str, str], OpTime] = field(default_factory=dict)
    on_device: bool = False
    busy: list[float] | None = None
    comm: list[float] = field(default_factory=list)
    comm_exposed: list[float] = field(default_factory=list)
    kernels: int = 0

    @property
    def steps(self) -> int:
        return len(self.bodies)

    @property
    def body_s(self) -> float:
        return sum(self.bodies)

    @property
    def reference(self) -> int:
        """The fastest recorded step: the one other processes on the machine disturbed least.
        The split inside a step is read from it."""
        return min(range(self.steps), key=lambda i: self.bodies[i]) if self.bodies else 0

    def outside_ops(self, step: int) -> float:
        """Host: step time outside any operation. Device: time the device sat idle in the step."""
        if self.on_device:
            return max(0.0, self.bodies[step] - (self.busy[step] if self.busy else 0.0))
        return max(0.0, self.bodies[step] - sum(op.per_step[step] for op in self.ops.values()))


def merge_intervals(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Union of intervals, sorted and non-overlapping."""
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def covered(intervals: Sequence[tuple[float, float]]) -> float:
    return sum(b - a for a, b in merge_intervals(intervals))


def clip(intervals: Iterable[tuple[float, float]], windows: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of ``intervals`` that fall inside ``windows`` (both in the same clock)."""
    windows = merge_intervals(windows)
    out = []
    for start, end in intervals:
        for w_start, w_end in windows:
            a, b = max(start, w_start), min(end, w_end)
            if b > a:
                out.append((a, b))
    return out


def exposed(comm: Sequence[tuple[float, float]], compute: Sequence[tuple[float, float]]) -> float:
    """Communication time not hidden under compute: |comm| - |comm and compute|."""
    comm_u = merge_intervals(comm)
    overlap = clip(comm_u, compute)
    return covered(comm_u) - covered(overlap)


def _device_kind(event: Any) -> str:
    return getattr(getattr(event, "device_type", None), "name", _CPU)


def _window(event: Any) -> tuple[float, float]:
    return float(event.time_range.start), float(event.time_range.end)


class _Ranges:
    """Sorted, non-overlapping windows with a fast 'which one holds t' lookup."""

    def __init__(self, windows: Iterable[tuple[float, float]]) -> None:
        self.windows = sorted(windows)  # steps never overlap; one window per step
        self._starts = [w[0] for w in self.windows]

    def index(self, t: float) -> int:
        """The window holding ``t``, or -1."""
        i = bisect.bisect_right(self._starts, t) - 1
        return i if i >= 0 and self.windows[i][0] <= t <= self.windows[i][1] else -1


def summarize_trace(events: Sequence[Any], op_names: set[str] | None, on_device: bool) -> TraceSummary:
    """Charge each step's time to operations (see the module doc).

    ``op_names``: the operation names the census saw (None: charge outermost ``aten::`` events).
    ``on_device``: read kernel times (GPU) instead of host times.
    """
    cpu_events = [e for e in events if _device_kind(e) == _CPU]
    steps = sorted((e for e in cpu_events if e.name == STEP_SCOPE), key=lambda e: e.time_range.start)
    data = [e for e in cpu_events if e.name == DATA_SCOPE]
    ranges = _Ranges(_window(e) for e in steps)
    summary = TraceSummary(
        bodies=[e.time_range.elapsed_us() / 1e6 for e in steps],
        data_s=sum(e.time_range.elapsed_us() for e in data) / 1e6,
        on_device=on_device,
    )

    def attributable(name: str) -> bool:
        if is_communication(name):
            return True
        if op_names is not None:
            return name in op_names
        return name.startswith(_OP_NAMESPACES)

    def charge(event: Any, scopes: tuple[str, ...], step: int) -> None:
        op_class = classify(event.name, scopes)
        key = (op_class, event.name)
        entry = summary.ops.get(key) or summary.ops.setdefault(key, OpTime(event.name, op_class, 0, [0.0] * len(steps)))
        entry.calls += 1
        total = event.device_time_total if on_device else event.cpu_time_total
        entry.per_step[step] += float(total) / 1e6

    def visit(event: Any, scopes: tuple[str, ...], step: int) -> None:
        if event.name == DATA_SCOPE:
            return  # waiting for data is measured by hasten's own timers
        if attributable(event.name):
            charge(event, scopes, step)
            return
        inner = scopes + (event.name,)
        for child in event.cpu_children:
            visit(child, inner, step)

    for event in cpu_events:
        if event.cpu_parent is not None or event.name == DATA_SCOPE:
            continue
        step = ranges.index(event.time_range.start)
        if step < 0:
            continue
        if event.name == STEP_SCOPE:
            for child in event.cpu_children:
                visit(child, (STEP_SCOPE,), step)
        else:
            visit(event, (STEP_SCOPE,), step)  # e.g. the autograd engine's own thread, on GPU

    if on_device:
        _device_times(summary, events, ranges)
    else:
        comm = [0.0] * len(steps)
        for op in summary.ops.values():
            if op.op_class == COMMUNICATION:
                comm = [a + b for a, b in zip(comm, op.per_step)]
        summary.comm = comm
        summary.comm_exposed = list(comm)  # on the host, a blocking collective is never hidden
    return summary


def _is_kernel(event: Any) -> bool:
    """A device activity (kernel, copy, set); not a ``record_function`` range mirrored on the
    device timeline, which would make the device look busy for the whole step."""
    if _device_kind(event) == _CPU or getattr(event, "is_user_annotation", False):
        return False
    return event.name not in (STEP_SCOPE, DATA_SCOPE) and not event.name.startswith(_ANNOTATIONS)


def _device_times(summary: TraceSummary, events: Sequence[Any], ranges: _Ranges) -> None:
    """Per step: busy time and exposed communication from the kernel intervals inside it."""
    kernels = [e for e in events if _is_kernel(e)]
    summary.busy, summary.comm, summary.comm_exposed = [], [], []
    for window in ranges.windows:
        inside = [(e, w) for e in kernels for w in clip([_window(e)], [window])]
        comm = [w for e, w in inside if is_communication(e.name)]
        compute = [w for e, w in inside if not is_communication(e.name)]
        summary.kernels += len(inside)
        summary.busy.append(covered([w for _, w in inside]) / 1e6)
        summary.comm.append(covered(comm) / 1e6)
        summary.comm_exposed.append(exposed(comm, compute) / 1e6)
