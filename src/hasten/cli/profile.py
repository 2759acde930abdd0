"""``hasten profile``: what bounds a recipe's training steps, the evidence, and the methods that help."""

from __future__ import annotations

import click

from hasten.cli.common import echo_json


@click.command()
@click.argument("workload")
@click.option(
    "--method",
    "-m",
    "methods",
    multiple=True,
    metavar="NAME[:k=v,...]",
    help="Profile the baseline plus this method (repeatable), e.g. --method data_echoing:echo_factor=2.",
)
@click.option(
    "--steps",
    type=int,
    default=10,
    show_default=True,
    help="Steps timed without the profiler attached (step time and data wait come from these).",
)
@click.option("--skip", type=int, default=3, show_default=True, help="Warm-up steps before any measurement.")
@click.option(
    "--record",
    type=int,
    default=5,
    show_default=True,
    help="Steps recorded with torch.profiler (where the time inside a step goes).",
)
@click.option(
    "--min-time",
    type=float,
    default=1.0,
    show_default=True,
    help="Least seconds of timed steps (averages out other load on the machine).",
)
@click.option(
    "--duration",
    "-d",
    default=None,
    help="Budget whose schedule the profiled steps follow (default: the workload's); the run stops early.",
)
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where the data files are. Default: $HASTEN_DATA, then the user cache.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--roofline",
    "roofline_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also draw the roofline with this run's operations placed on it (PNG).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def profile(
    workload: str,
    methods: tuple[str, ...],
    steps: int,
    skip: int,
    record: int,
    min_time: float,
    duration: str | None,
    precision: str,
    device: str,
    data_dir: str | None,
    seed: int,
    roofline_path: str | None,
    as_json: bool,
) -> None:
    """Profile WORKLOAD's training steps: verdict (data, host, memory, compute or communication),
    the measured evidence, and the catalogue methods that relieve that bottleneck."""
    from hasten.methods.registry import build_methods
    from hasten.profile.profiler import Profiler
    from hasten.profile.workload import profile_workload
    from hasten.workloads.base import get_workload

    get_workload(workload)
    build_methods(list(methods))  # bad input fails before any work
    created = None
    if roofline_path:
        from hasten.cli.microbench import output_file

        _, created = output_file(roofline_path, "roofline plot")
    Profiler("cpu", skip=skip, steps=steps, record=record, min_time=min_time)  # checks the window sizes
    report = profile_workload(
        workload,
        methods,
        steps=steps,
        skip=skip,
        record=record,
        min_time=min_time,
        duration=duration,
        device=device,
        precision=precision,
        data_dir=data_dir,
        seed=seed,
    )
    if roofline_path:
        from hasten.profile.peaks import get_peaks
        from hasten.profile.roofline import plot_roofline

        peaks = get_peaks(report.evidence["device"])
        plot_roofline(
            peaks,
            roofline_path,
            sweep=peaks.sweep,
            ops=report.evidence["top_ops"],
            title=f"Roofline: {workload} on {peaks.device_name}",
        )
        if created is not None:
            click.echo(f"created folder {created} for the roofline plot", err=True)
    if as_json:
        data = report.to_dict()
        data["workload"], data["methods"] = workload, list(methods)
        if roofline_path:
            data["roofline"] = roofline_path
        echo_json(data)
        return
    click.echo(f"Profile of {workload}" + (f" with {' + '.join(methods)}" if methods else " (baseline)"))
    click.echo("")
    click.echo(report.render())
    if roofline_path:
        click.echo(f"\nRoofline written to {roofline_path}")


COMMANDS = [profile]
