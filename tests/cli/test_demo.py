"""`hasten demo` from the command line (on toy; the default shakespeare race takes minutes)."""

from __future__ import annotations

from click.testing import CliRunner

from hasten.cli.main import cli


def test_demo_command(tmp_path):
    out = tmp_path / "race"
    result = CliRunner().invoke(
        cli,
        [
            "demo",
            "--workload",
            "toy",
            "--recipe",
            "label_smoothing",
            "--target",
            "0.9",
            "--eval-interval",
            "8ba",
            "--seeds",
            "2",
            "--out",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "speedup" in result.stdout and "report:" in result.stdout
    assert (out / "report.html").exists() and (out / "report.md").exists()


def test_demo_bad_input(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--recipe", "no_such_method", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown method" in result.stderr
