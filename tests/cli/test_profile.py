from __future__ import annotations

import json

from click.testing import CliRunner

from hasten.cli.main import cli
from hasten.profile.verdict import PRIORITY

QUICK = ["--steps", "3", "--skip", "1", "--record", "2", "--min-time", "0", "--device", "cpu"]


def test_profile_prints_verdict_evidence_and_recommendations(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["profile", "toy", *QUICK, "--roofline", str(tmp_path / "toy.png")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Profile of toy (baseline)"
    assert lines[2].startswith("Verdict: ") and "-bound." in lines[2]
    for heading in ("Evidence (cpu", "where it goes", "Recommendations (best first)", "After a fix"):
        assert heading in result.output
    assert (tmp_path / "toy.png").read_bytes()[:4] == b"\x89PNG"


def test_profile_json_is_one_object(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["profile", "toy", *QUICK, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["verdict"] in PRIORITY and data["workload"] == "toy"
    assert sum(data["evidence"]["shares"].values()) == __import__("pytest").approx(1.0)
    assert all(data["verdict"] in r["why"] for r in data["recommendations"] if r["bottleneck"] == data["verdict"])


def test_bad_input_exits_2_with_one_line():
    runner = CliRunner()
    for args in (
        ["profile", "no_such_workload"],
        ["profile", "toy", "--steps", "1"],
        ["profile", "toy", "--method", "no_such_method"],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1
