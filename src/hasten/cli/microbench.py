"""``hasten microbench``: this device's achievable peaks, cached, and its roofline plot."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hasten.cli.common import echo_json, print_table
from hasten.errors import ConfigError

if TYPE_CHECKING:
    from hasten.profile.peaks import Change, Peaks


def output_file(path: str, what: str) -> tuple[Path, Path | None]:
    """Check where a file will be written before any work: its folder may be missing (it is
    created, and the caller says so, as ``report --out`` creates its folder) but not a file.
    Returns the path and the folder that will have to be created, if any."""
    target = Path(path)
    missing = None
    for parent in [target.parent, *target.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(
                    f"cannot write the {what} to {path}: {parent} is a file, not a folder",
                    "pass a path inside a folder",
                )
            break
        missing = parent
    return target, None if missing is None else target.parent


def _fmt(change: Change) -> str:
    def value(v: float) -> str:
        if change.figure == "op overhead":
            return f"{v * 1e6:.1f} us"
        return f"{v / 1e9:.2f} {'GB/s' if change.figure == 'copy bandwidth' else 'GFLOP/s'}"

    return (
        f"{change.figure}: measured {value(change.measured)}, {1 / change.ratio:.1f}x worse than the cached "
        f"{value(change.cached)}"
    )


def cache_warnings(measured: Peaks, changes: list[Change], replaced: bool) -> list[str]:
    """Lines that say when this measurement is worse than the cache, and what was kept."""
    lines = []
    busy = measured.busy
    if busy is not None and busy > 1:
        lines.append(
            f"the machine was busy while measuring (load average {busy * (os.cpu_count() or 1):.1f} on "
            f"{os.cpu_count()} cores): the figures may be low"
        )
    worse = [c for c in changes if c.clearly_worse]
    for change in worse:
        kept = "replaced it, as --replace asked" if replaced else "kept the cached figure"
        lines.append(f"{_fmt(change)}; {kept}")
    if worse and not replaced:
        lines.append("rerun on an idle machine, or pass --replace to store this measurement as it is")
    return lines


@click.command()
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--quick", is_flag=True, help="A fast, rougher measurement with no op sweep (seconds).")
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=None,
    help="Measure each peak this many times and keep the best. Default: 2 with --quick, else 3.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Store this measurement as it is, even where the cached figures are better "
    "(by default the cache keeps the better figure of the two).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="roofline.png",
    show_default=True,
    help="Where to write the roofline plot (PNG); a missing folder is created.",
)
@click.option(
    "--ops",
    "ops_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Place a profiled run's operations on the plot: a file saved from 'hasten profile ... --json'.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the peaks as JSON.")
def microbench(
    device: str, quick: bool, rounds: int | None, replace: bool, out: str, ops_path: str | None, as_json: bool
) -> None:
    """Measure this device's peaks (matmul fp32 and bf16, copy bandwidth, per-op overhead) and
    every op class across sizes; cache them for the profiler and draw the roofline.

    Other load can only lower a figure, so each is the best of several rounds, and the cache
    keeps, figure by figure, the better of what it held and what was just measured."""
    from hasten.profile import peaks as peaks_module
    from hasten.profile.roofline import plot_roofline
    from hasten.trainer.trainer import resolve_device

    ops = _read_ops(ops_path) if ops_path else []
    plot_path, created = output_file(out, "roofline plot")
    target = resolve_device(device)
    measured = peaks_module.measure_peaks(target, quick=quick, sweep=not quick, rounds=rounds)
    cached = peaks_module.load_peaks(target)
    changes = peaks_module.compare_peaks(cached, measured) if cached is not None else []
    stored = measured if replace else peaks_module.merge_peaks(cached, measured)
    cache_file = peaks_module.save_peaks(stored)
    plot = plot_roofline(stored, plot_path, sweep=stored.sweep, ops=ops)
    warnings = cache_warnings(measured, changes, replace)
    if created is not None:
        click.echo(f"created folder {created} for the roofline plot", err=True)
    for line in warnings:
        click.echo(f"warning: {line}", err=True)
    if as_json:
        data = stored.to_dict()
        data.update(
            cache=str(cache_file),
            roofline=str(plot),
            ridge_point=stored.ridge("float32"),
            measured={k: v for k, v in measured.to_dict().items() if k != "sweep"},
            kept_cached=[c.figure for c in changes if c.clearly_worse and not replace],
            warnings=warnings,
        )
        echo_json(data)
        return
    rows = [
        (
            "matmul fp32",
            f"{stored.matmul_flops['float32'] / 1e9:.1f} GFLOP/s",
            f"{measured.matmul_flops['float32'] / 1e9:.1f} GFLOP/s",
        ),
        (
            "matmul bf16",
            f"{stored.matmul_flops['bfloat16'] / 1e9:.1f} GFLOP/s",
            f"{measured.matmul_flops['bfloat16'] / 1e9:.1f} GFLOP/s",
        ),
        ("copy bandwidth", f"{stored.bandwidth / 1e9:.1f} GB/s", f"{measured.bandwidth / 1e9:.1f} GB/s"),
        (
            "ridge point (fp32)",
            f"{stored.ridge('float32'):.1f} FLOP/byte",
            f"{measured.ridge('float32'):.1f} FLOP/byte",
        ),
        ("one empty operation", f"{stored.op_overhead_s * 1e6:.1f} us", f"{measured.op_overhead_s * 1e6:.1f} us"),
    ]
    threads = f", {stored.threads} thread{'s' if stored.threads != 1 else ''}" if stored.device_type == "cpu" else ""
    print_table(
        ("peak", "cached (best)", "this measurement"),
        rows,
        title=f"{stored.device_name}{threads}{' (quick)' if quick else ''}",
    )
    if measured.sweep:
        sweep_rows = [
            (p.op, p.size, p.dtype, f"{p.flops_per_s / 1e9:.2f}", f"{p.bytes_per_s / 1e9:.2f}") for p in stored.sweep
        ]
        print_table(("op", "size", "dtype", "GFLOP/s", "GB/s"), sweep_rows, title="op classes across sizes")
    click.echo(f"cached in {cache_file}")
    click.echo(f"roofline written to {plot}")


def _read_ops(path: str) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text())
        return list(data["evidence"]["top_ops"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            f"{path} is not a saved profile report", "save one with 'hasten profile WORKLOAD --json > report.json'"
        ) from None


COMMANDS = [microbench]
