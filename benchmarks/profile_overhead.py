"""Does profiling change step time outside the recorded window? (issue 6: it must not, by > 5%)

Runs two copies of the same training loop in lockstep, one plain and one under
``hasten.profile.Profiler``, taking turns step by step (which loop leads alternates between
repeats), and times every step with the
benchmark's own clock. Steps the profiler times (its timed window) and steps after it is done
are compared with the same steps of the plain loop; steps under torch.profiler or the census
are excluded (that is the recorded window, where overhead is expected). Per repeat the ratio is
median(profiled) / median(plain); the result is the median over repeats.

    python benchmarks/profile_overhead.py            # full: 7 repeats of 200 steps
    python benchmarks/profile_overhead.py --quick    # a smoke run (contended numbers)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from hasten.profile import Profiler
from hasten.profile.peaks import measure_peaks
from hasten.profile.profiler import DONE, TIMED

LIMIT = 1.05


def make_loop(device: torch.device, width: int, batch: int):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10)
    ).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    data = [(torch.randn(batch, width, device=device), torch.randint(0, 10, (batch,), device=device)) for _ in range(8)]

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()

    return step, data


def stepper(device: torch.device, steps: int, width: int, batch: int, profiler: Profiler | None):
    """Yield (phase, seconds) per step, timed by the benchmark from fetching the batch to the
    end of the step. A generator, so a plain and a profiled loop can run in lockstep and share
    whatever else the machine is doing at that moment."""
    step, data = make_loop(device, width, batch)
    batches = (data[i % len(data)] for i in range(steps))
    source = iter(profiler.wrap(batches) if profiler else batches)
    while True:
        start = time.perf_counter()
        try:
            x, y = next(source)
        except StopIteration:
            return
        phase = profiler.phase if profiler else TIMED
        if profiler:
            with profiler.step():
                step(x, y)
        else:
            step(x, y)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        yield phase, time.perf_counter() - start


def lockstep(device: torch.device, steps: int, width: int, batch: int, peaks, profiled_first: bool) -> float:
    """One repeat: the two loops take turns step by step (each step follows one of the other
    loop, so both see the same cache state); median ratio over steps outside the window."""
    profiler = Profiler(device, skip=3, steps=20, record=3, min_time=0, peaks=peaks)
    plain = stepper(device, steps, width, batch, None)
    profiled = stepper(device, steps, width, batch, profiler)
    pairs = []
    for _ in range(steps):
        if profiled_first:
            (phase, b), a = next(profiled), next(plain)[1]
        else:
            a, (phase, b) = next(plain)[1], next(profiled)
        if phase in (TIMED, DONE):
            pairs.append((a, b))
    profiler.report()  # the full path, outside the timed steps
    return statistics.median(b for _, b in pairs) / statistics.median(a for a, _ in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats and steps: checks the script runs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 7)
    steps = args.steps or (60 if args.quick else 200)
    device = torch.device(args.device)
    peaks = measure_peaks(device, quick=True)  # measured once, outside every timed loop

    ratios = [lockstep(device, steps, args.width, args.batch, peaks, profiled_first=r % 2 == 1) for r in range(repeats)]
    ratio = statistics.median(ratios)
    summary = {
        "device": str(device),
        "repeats": repeats,
        "steps": steps,
        "width": args.width,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "ratios": ratios,
        "median_ratio": ratio,
        "limit": LIMIT,
        "pass": ratio <= LIMIT,
        "quick": args.quick,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"step time with profiler / without, outside the recorded window ({device}, {repeats} repeats): "
            f"median {ratio:.3f} (per repeat: {', '.join(f'{x:.3f}' for x in ratios)}); limit {LIMIT}: "
            f"{'PASS' if summary['pass'] else 'FAIL'}" + (" [quick run: contended, not a result]" if args.quick else "")
        )
    raise SystemExit(0 if summary["pass"] or args.quick else 1)


if __name__ == "__main__":
    main()
