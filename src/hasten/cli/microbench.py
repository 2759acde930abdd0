"""``hasten microbench``: this device's achievable peaks, cached, and its roofline plot."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hasten.cli.common import echo_json, print_table
from hasten.errors import ConfigError


@click.command()
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--quick", is_flag=True, help="A fast, rougher measurement with no op sweep (seconds).")
@click.option("--out", type=click.Path(dir_okay=False), default="roofline.png", show_default=True,
              help="Where to write the roofline plot (PNG).")
@click.option("--ops", "ops_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Place a profiled run's operations on the plot: a file saved from 'hasten profile ... --json'.")
@click.option("--json", "as_json", is_flag=True, help="Print the peaks as JSON.")
def microbench(device: str, quick: bool, out: str, ops_path: str | None, as_json: bool) -> None:
    """Measure this device's peaks (matmul fp32 and bf16, copy bandwidth, per-op overhead) and
    every op class across sizes; cache them for the profiler and draw the roofline."""
    from hasten.profile.peaks import measure_peaks, save_peaks
    from hasten.profile.roofline import plot_roofline
    from hasten.trainer.trainer import resolve_device

    ops = _read_ops(ops_path) if ops_path else []
    target = resolve_device(device)
    peaks = measure_peaks(target, quick=quick, sweep=not quick)
    cached = save_peaks(peaks)
    plot = plot_roofline(peaks, out, sweep=peaks.sweep, ops=ops)
    if as_json:
        data = peaks.to_dict()
        data.update(cache=str(cached), roofline=str(plot), ridge_point=peaks.ridge("float32"))
        echo_json(data)
        return
    rows = [
        ("matmul fp32", f"{peaks.matmul_flops['float32'] / 1e9:.1f} GFLOP/s"),
        ("matmul bf16", f"{peaks.matmul_flops['bfloat16'] / 1e9:.1f} GFLOP/s"),
        ("copy bandwidth", f"{peaks.bandwidth / 1e9:.1f} GB/s"),
        ("ridge point (fp32)", f"{peaks.ridge('float32'):.1f} FLOP/byte"),
        ("one empty operation", f"{peaks.op_overhead_s * 1e6:.1f} us"),
    ]
    threads = f", {peaks.threads} thread{'s' if peaks.threads != 1 else ''}" if peaks.device_type == "cpu" else ""
    print_table(("peak", "value"), rows, title=f"{peaks.device_name}{threads}{' (quick)' if quick else ''}")
    if peaks.sweep:
        sweep_rows = [(p.op, p.size, p.dtype, f"{p.flops_per_s / 1e9:.2f}", f"{p.bytes_per_s / 1e9:.2f}")
                      for p in peaks.sweep]
        print_table(("op", "size", "dtype", "GFLOP/s", "GB/s"), sweep_rows, title="op classes across sizes")
    click.echo(f"cached in {cached}")
    click.echo(f"roofline written to {plot}")


def _read_ops(path: str) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text())
        return list(data["evidence"]["top_ops"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{path} is not a saved profile report",
                          "save one with 'hasten profile WORKLOAD --json > report.json'") from None


COMMANDS = [microbench]
