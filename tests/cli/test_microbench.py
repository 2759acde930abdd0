from __future__ import annotations

import json

from click.testing import CliRunner

from hasten.cli.main import cli
from hasten.profile import peaks as peaks_module


def test_microbench_quick_caches_peaks_and_draws_the_roofline(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "roof.png"
    result = CliRunner().invoke(cli, ["microbench", "--quick", "--device", "cpu", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["quick"] is True and data["matmul_flops"]["float32"] > 0 and data["bandwidth"] > 0
    cached = json.loads(open(data["cache"]).read())
    assert cached["matmul_flops"] == data["matmul_flops"]
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_microbench_places_a_saved_profile_on_the_plot(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    saved = tmp_path / "report.json"
    saved.write_text(
        json.dumps(
            {
                "evidence": {
                    "top_ops": [
                        {"name": "aten::mm", "class": "matmul/conv", "work_flops": 2e9, "bytes": 1e7, "time_s": 0.02}
                    ]
                }
            }
        )
    )
    result = CliRunner().invoke(
        cli, ["microbench", "--quick", "--device", "cpu", "--out", str(tmp_path / "r.png"), "--ops", str(saved)]
    )
    assert result.exit_code == 0, result.output
    assert "roofline written to" in result.output and "cached in" in result.output


def test_microbench_rejects_a_file_that_is_not_a_profile(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    result = CliRunner().invoke(cli, ["microbench", "--quick", "--ops", str(bad)])
    assert result.exit_code == 2
    assert "not a saved profile report" in result.output


def _measure_with(monkeypatch, fp32: float, load: float = 0.1):
    """A fake measurement: this fp32 matmul rate, fixed other figures, this load average."""

    def fake(device, *, quick=False, sweep=False, rounds=None):
        threads = peaks_module._identity(device)
        return peaks_module.Peaks(
            *threads,
            matmul_flops={"float32": fp32, "bfloat16": 1e9},
            bandwidth=5e9,
            op_overhead_s=2e-6,
            quick=quick,
            load_average={"start": [load] * 3, "end": [load] * 3},
        )

    monkeypatch.setattr(peaks_module, "measure_peaks", fake)


def _run(tmp_path, *extra):
    return CliRunner().invoke(
        cli, ["microbench", "--quick", "--device", "cpu", "--out", str(tmp_path / "r.png"), "--json", *extra]
    )


def test_a_clearly_worse_measurement_never_replaces_the_cache_silently(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _measure_with(monkeypatch, 22e9)
    assert _run(tmp_path).exit_code == 0
    _measure_with(monkeypatch, 1e9, load=40.0)  # 22x below, on a machine far busier than its cores
    result = _run(tmp_path)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["matmul_flops"]["float32"] == 22e9 and data["measured"]["matmul_flops"]["float32"] == 1e9
    assert data["kept_cached"] == ["matmul float32"]
    assert "22.0x worse than the cached 22.00 GFLOP/s; kept the cached figure" in result.stderr
    assert "--replace" in result.stderr and "busy while measuring (load average 40.0" in result.stderr
    assert peaks_module.load_peaks("cpu").matmul_flops["float32"] == 22e9

    forced = _run(tmp_path, "--replace")
    assert forced.exit_code == 0 and "replaced it, as --replace asked" in forced.stderr
    assert peaks_module.load_peaks("cpu").matmul_flops["float32"] == 1e9


def test_a_better_measurement_updates_the_cache_without_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _measure_with(monkeypatch, 5e9)
    assert _run(tmp_path).exit_code == 0
    _measure_with(monkeypatch, 6e9)
    result = _run(tmp_path)
    assert result.exit_code == 0 and "warning" not in result.stderr
    assert peaks_module.load_peaks("cpu").matmul_flops["float32"] == 6e9


def test_out_creates_a_missing_folder_and_says_so_but_refuses_a_file_as_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _measure_with(monkeypatch, 5e9)
    out = tmp_path / "plots" / "deep" / "roof.png"
    result = CliRunner().invoke(cli, ["microbench", "--quick", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG" and f"created folder {out.parent}" in result.stderr
    (tmp_path / "afile").write_text("x")
    bad = CliRunner().invoke(
        cli, ["microbench", "--quick", "--device", "cpu", "--out", str(tmp_path / "afile" / "r.png")]
    )
    assert bad.exit_code == 2 and "is a file, not a folder" in bad.stderr
