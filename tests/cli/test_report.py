"""`hasten report` writes its figures, Markdown and HTML where asked; profiles need two workloads."""

from __future__ import annotations

from click.testing import CliRunner

from hasten.cli.main import cli
from hasten.store.store import RunStore
from tests.curves.synthetic import run


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_report_on_toy(store_path, tmp_path):
    assert (
        invoke("curve", "toy", "--recipe", "label_smoothing", "--budgets", "6ba,12ba,24ba", "--seeds", "2").exit_code
        == 0
    )
    out = tmp_path / "report"
    result = invoke("report", "toy", "--target", "0.5", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"tradeoff.png", "speedup.png", "factors.png", "report.md", "report.html"}
    assert "label_smoothing" in (out / "report.md").read_text()
    assert str(out / "report.html") in result.stdout
    profiles = invoke("report", "toy", "--target", "0.5", "--out", str(out), "--profiles")
    assert profiles.exit_code == 2 and "2 or more workloads" in profiles.stderr


def test_report_with_profiles_across_workloads(store_path, tmp_path):
    store = RunStore(store_path)
    for workload in ("toy", "other"):
        for seed in range(2):
            store.create_run(run("baseline", seed, [(1 + seed, 10, 0.5), (4 + seed, 40, 0.95)], workload=workload))
            store.create_run(run("fast", seed, [(0.5 + seed, 10, 0.5), (2 + seed, 40, 0.95)], workload=workload))
    result = invoke("report", "toy", "--out", str(tmp_path / "r"), "--profiles")
    # 'other' is not a registered workload, so it has no target and takes no part
    assert result.exit_code == 2 and "found 1" in result.stderr


def test_default_folder_stays_inside_hasten_report_whatever_the_workload_name(store_path, tmp_path, monkeypatch):
    store = RunStore(store_path)
    name = "../../escaped"
    for seed in range(2):
        for recipe, scale in (("baseline", 1.0), ("fast", 0.5)):
            store.create_run(
                run(recipe, seed, [(scale * (1 + seed), 10, 0.5), (scale * (4 + seed), 40, 0.95)], workload=name)
            )
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    result = invoke("report", name, "--target", "0.9")
    assert result.exit_code == 0, result.output
    assert (work / "hasten-report" / "escaped" / "report.md").exists()
    assert not (tmp_path / "a" / "escaped").exists()  # where hasten-report/../../escaped would lead
