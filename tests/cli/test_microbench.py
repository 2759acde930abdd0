from __future__ import annotations

import json

from click.testing import CliRunner

from hasten.cli.main import cli


def test_microbench_quick_caches_peaks_and_draws_the_roofline(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "roof.png"
    result = CliRunner().invoke(cli, ["microbench", "--quick", "--device", "cpu", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["quick"] is True and data["matmul_flops"]["float32"] > 0 and data["bandwidth"] > 0
    cached = json.loads(open(data["cache"]).read())
    assert cached["matmul_flops"] == data["matmul_flops"]
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_microbench_places_a_saved_profile_on_the_plot(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps({"evidence": {"top_ops": [
        {"name": "aten::mm", "class": "matmul/conv", "work_flops": 2e9, "bytes": 1e7, "time_s": 0.02}]}}))
    result = CliRunner().invoke(cli, ["microbench", "--quick", "--device", "cpu", "--out", str(tmp_path / "r.png"),
                                      "--ops", str(saved)])
    assert result.exit_code == 0, result.output
    assert "roofline written to" in result.output and "cached in" in result.output


def test_microbench_rejects_a_file_that_is_not_a_profile(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    result = CliRunner().invoke(cli, ["microbench", "--quick", "--ops", str(bad)])
    assert result.exit_code == 2
    assert "not a saved profile report" in result.output
