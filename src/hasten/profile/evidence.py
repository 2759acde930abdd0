"""Turn timings, a trace and a census into the numbers behind a verdict.

Every second of a step is charged to exactly one bottleneck (docs/profiler.md, rules S1-S5):

- **data**: waiting in ``next()`` for the batch (hasten's clocks, unprofiled steps);
- **host**: time between steps and, inside a step, time outside any operation (Python, the
  autograd engine, framework wrappers) plus time in *overhead-bound* operations, whose ideal
  time at this device's peaks is below the fixed cost of one eager operation (on a GPU: the
  time the device sits idle during the step);
- **communication**: collectives not hidden behind compute;
- **memory** / **compute**: operations whose arithmetic intensity (FLOP per byte moved) is
  below / at or above the ridge point of the measured roofline.

The fastest recorded (profiled) step gives the split inside a step; the timed (unprofiled)
steps give how long steps really take and how much of it is spent waiting for data.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from hasten.bottlenecks import COMPUTE, HOST, MEMORY
from hasten.bottlenecks import PRIORITY as BOTTLENECKS  # shares are reported in verdict order
from hasten.profile.census import OpCount, StepCensus
from hasten.profile.opclasses import COMMUNICATION, DATA, MATMUL, OP_CLASSES
from hasten.profile.peaks import Peaks
from hasten.profile.trace import OpTime, TraceSummary


@dataclass
class StepTimes:
    """Per-step host clock readings from the timed (unprofiled) window, in seconds."""

    waits: list[float] = field(default_factory=list)
    bodies: list[float] = field(default_factory=list)
    iterations: list[float] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.iterations)


@dataclass
class OpRow:
    """One operation group per step: measured time joined with counted work."""

    name: str
    op_class: str
    calls: float
    seconds: float
    flops: float
    work_flops: float
    bytes: float
    dtype: str
    regime: str

    @property
    def intensity(self) -> float:
        return self.work_flops / self.bytes if self.bytes > 0 else 0.0


def regime_of(op: OpTime, count: OpCount | None, peaks: Peaks, on_device: bool) -> str:
    """Which bottleneck an operation group's time belongs to (rules S2, S4, S5)."""
    if op.op_class == COMMUNICATION:
        return "communication"
    if count is None:  # no census: judge by name, and by time per call against the per-op overhead
        if not on_device and op.calls > 0 and op.seconds / op.calls < 2 * peaks.op_overhead_s:
            return HOST
        return COMPUTE if op.op_class == MATMUL else MEMORY
    per_call_flops = count.work_flops / max(count.calls, 1)
    per_call_bytes = count.bytes / max(count.calls, 1)
    ideal = max(per_call_flops / peaks.peak_flops(count.dtype or "float32"), per_call_bytes / peaks.bandwidth)
    if not on_device and ideal < peaks.op_overhead_s:
        return HOST
    return COMPUTE if count.intensity >= peaks.ridge(count.dtype or "float32") else MEMORY


def _join(trace: TraceSummary, census: StepCensus | None) -> dict[tuple[str, str], tuple[OpTime, OpCount | None]]:
    """Pair each timed operation with its census entry (same class and name, else same name)."""
    by_name: dict[str, OpCount] = {}
    if census is not None:
        for (_, name), count in census.ops.items():
            merged = by_name.setdefault(name, OpCount(name=name, op_class=count.op_class, view=count.view))
            merged.calls += count.calls
            merged.flops += count.flops
            merged.est_flops += count.est_flops
            merged.bytes += count.bytes
            merged.dtypes.update(count.dtypes)
    joined: dict[tuple[str, str], tuple[OpTime, OpCount | None]] = {}
    for key, op in trace.ops.items():
        found = census.ops.get(key) if census is not None else None
        joined[key] = (op, found if found is not None else by_name.get(op.name))
    return joined


def op_rows(trace: TraceSummary, census: StepCensus | None, peaks: Peaks, scale: float) -> list[OpRow]:
    """Per-step rows (the census counts one step); times are the reference step's, scaled by
    ``scale`` (recorded step time -> real step time)."""
    steps, ref = max(trace.steps, 1), trace.reference
    rows = []
    for (op_class, name), (op, count) in _join(trace, census).items():
        calls = op.calls / steps
        rows.append(
            OpRow(
                name=name,
                op_class=op_class,
                calls=calls,
                seconds=op.per_step[ref] * scale if op.per_step else 0.0,
                flops=count.flops if count is not None else 0.0,
                work_flops=count.work_flops if count is not None else 0.0,
                bytes=count.bytes if count is not None else 0.0,
                dtype=count.dtype if count is not None else "",
                regime=regime_of(op, count, peaks, trace.on_device),
            )
        )
    return sorted(rows, key=lambda r: -r.seconds)


def body_split(trace: TraceSummary, rows: list[OpRow]) -> dict[str, float]:
    """Seconds of the reference step's body for host, memory, compute and communication
    (``rows`` unscaled)."""
    ref = trace.reference
    split = dict.fromkeys(("host", "memory", "compute", "communication"), 0.0)
    split["host"] = trace.outside_ops(ref) if trace.steps else 0.0
    if trace.on_device:
        busy = trace.busy[ref] if trace.busy else 0.0
        comm = trace.comm_exposed[ref] if trace.comm_exposed else 0.0
        work = {k: sum(r.seconds for r in rows if r.regime == k) for k in ("memory", "compute")}
        total = sum(work.values())
        fit = max(0.0, busy - comm) / total if total > 0 else 0.0  # overlapping streams: fit work into busy time
        split.update(memory=work["memory"] * fit, compute=work["compute"] * fit, communication=comm)
    else:
        for row in rows:
            split[row.regime] += row.seconds
    return split


def gather_evidence(
    times: StepTimes,
    trace: TraceSummary,
    census: StepCensus | None,
    peaks: Peaks,
    *,
    device_type: str = "cpu",
) -> dict[str, Any]:
    """The evidence dictionary (docs/profiler.md lists every key)."""
    n = len(times)
    total = sum(times.iterations)
    waits, bodies = sum(times.waits), sum(times.bodies)
    other = max(0.0, total - waits - bodies)
    step_time = total / n
    recorded_body = trace.bodies[trace.reference] if trace.steps else 0.0
    rows = op_rows(trace, census, peaks, scale=1.0)
    split = body_split(trace, rows)
    split_total = sum(split.values()) or 1.0
    fractions = {k: v / split_total for k, v in split.items()}

    # S1-S5: shares of the whole step; time between steps is host work on CPU, and on a GPU
    # (unsynchronized host clocks) it is spread like the body, as the synchronized window shows
    inside = bodies + (other if trace.on_device else 0.0)
    shares = {"data": waits / total}
    for key, fraction in fractions.items():
        shares[key] = inside / total * fraction
    if not trace.on_device:
        shares["host"] += other / total
    shares = {b: shares.get(b, 0.0) for b in BOTTLENECKS}

    scale = (inside / n) / recorded_body if recorded_body > 0 else 1.0
    rows = op_rows(trace, census, peaks, scale=scale)
    flops = census.total_flops if census is not None else 0.0
    nbytes = census.bytes if census is not None else 0.0
    dtype = census.matmul_dtype() if census is not None else "float32"
    peak = peaks.peak_flops(dtype)
    achieved = flops / step_time if step_time > 0 else 0.0
    ops_per_step = census.calls if census is not None else sum(r.calls for r in rows)
    samples = statistics.median(times.samples) if times.samples else None
    outside = trace.outside_ops(trace.reference) if trace.steps else 0.0
    evidence: dict[str, Any] = {
        "device": device_type,
        "device_name": peaks.device_name,
        "threads": peaks.threads,
        "steps_timed": n,
        "steps_recorded": trace.steps,
        "step_time_s": step_time,
        "step_time_median_s": statistics.median(times.iterations),
        "data_wait_s": waits / n,
        "data_wait_fraction": shares["data"],
        "host_fraction": shares["host"],
        "memory_fraction": shares["memory"],
        "compute_fraction": shares["compute"],
        "communication_fraction": shares["communication"],
        "shares": shares,
        **{f"{b}_time_s": shares[b] * step_time for b in ("host", "memory", "compute", "communication")},
        "framework_fraction": outside / recorded_body if recorded_body > 0 and not trace.on_device else None,
        "device_idle_fraction": outside / recorded_body if recorded_body > 0 and trace.on_device else None,
        "ops_per_step": ops_per_step,
        "overhead_bound_ops_per_step": sum(r.calls for r in rows if r.regime == HOST),
        "mean_op_time_s": (sum(r.seconds for r in rows) / ops_per_step) if ops_per_step else 0.0,
        "kernels_per_step": trace.kernels / max(trace.steps, 1) if trace.on_device else None,
        "flops_per_step": flops,
        "bytes_per_step": nbytes,
        "arithmetic_intensity": flops / nbytes if nbytes > 0 else 0.0,
        "achieved_flops_per_s": achieved,
        "achieved_bytes_per_s": nbytes / step_time if step_time > 0 else 0.0,
        "matmul_dtype": dtype,
        "peak_flops": peak,
        "peak_bandwidth": peaks.bandwidth,
        "ridge_point": peaks.ridge(dtype),
        "op_overhead_s": peaks.op_overhead_s,
        "peaks_quick": peaks.quick,
        "mfu": achieved / peak if peak > 0 else 0.0,
        "samples_per_step": samples,
        "time_per_sample_s": step_time / samples if samples else None,
        "op_classes": class_table(rows, times, census),
        "top_ops": [row_dict(r) for r in rows[:15]],
        "census": census is not None and census.error is None,
        "notes": notes(census, peaks, rows),
    }
    return evidence


def class_table(rows: list[OpRow], times: StepTimes, census: StepCensus | None) -> dict[str, dict[str, float]]:
    """Per op class and step: time, share of op time, calls, counted FLOPs, bytes, rates."""
    table: dict[str, dict[str, float]] = {}
    op_time = sum(r.seconds for r in rows) or 1.0
    for op_class in OP_CLASSES:
        if op_class == DATA:
            continue
        mine = [r for r in rows if r.op_class == op_class]
        counted = [c for c in census.ops.values() if c.op_class == op_class] if census is not None else []
        seconds = sum(r.seconds for r in mine)
        flops = sum(c.flops for c in counted)
        nbytes = sum(c.bytes for c in counted)
        table[op_class] = {
            "time_s": seconds,
            "fraction_of_op_time": seconds / op_time,
            "calls": sum(r.calls for r in mine),
            "flops": flops,
            "bytes": nbytes,
            "flops_per_s": flops / seconds if seconds > 0 else 0.0,
            "bytes_per_s": nbytes / seconds if seconds > 0 else 0.0,
        }
    wait = sum(times.waits) / max(len(times), 1)
    table[DATA] = {
        "time_s": wait,
        "fraction_of_op_time": 0.0,
        "calls": 1.0,
        "flops": 0.0,
        "bytes": 0.0,
        "flops_per_s": 0.0,
        "bytes_per_s": 0.0,
    }
    return table


def row_dict(row: OpRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "class": row.op_class,
        "regime": row.regime,
        "calls": row.calls,
        "time_s": row.seconds,
        "flops": row.flops,
        "work_flops": row.work_flops,
        "bytes": row.bytes,
        "intensity": row.intensity,
        "flops_per_s": row.work_flops / row.seconds if row.seconds > 0 else 0.0,
        "dtype": row.dtype,
    }


def notes(census: StepCensus | None, peaks: Peaks, rows: list[OpRow]) -> list[str]:
    """Caveats a reader needs to weigh the numbers."""
    out = []
    if census is None:
        out.append(
            "no operation census (the run ended before it, or count_ops=False): FLOPs and bytes are "
            "unknown and operations are judged by name"
        )
    elif census.error:
        out.append(f"the operation census failed ({census.error}); operations are judged by name")
    if peaks.quick:
        out.append("peaks were measured quickly on the fly; run 'hasten microbench' for steadier ones")
    fastest = max((r.flops / r.seconds for r in rows if r.seconds > 0 and r.flops > 0), default=0.0)
    if fastest > 1.05 * peaks.peak_flops("float32") and fastest > 1.05 * peaks.peak_flops("bfloat16"):
        out.append(
            "an operation ran faster than the measured peak, so that peak was measured while the machine was "
            "busy; MFU is overstated until 'hasten microbench' measures it again"
        )
    uncounted = [r.name for r in rows if r.op_class == MATMUL and r.flops == 0 and r.seconds > 0 and census is not None]
    if uncounted:
        out.append(
            "FLOPs not counted for "
            + ", ".join(sorted(set(uncounted))[:4])
            + " (PyTorch's FLOP counter has no formula for them; MFU is understated; attention FLOPs are "
            "estimated from shapes for the roofline)"
        )
    return out
