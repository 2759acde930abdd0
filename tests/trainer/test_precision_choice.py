"""precision: auto picks bf16 only where the measured bf16 matmul is faster, and says why."""

from __future__ import annotations

import pytest

from hasten.trainer import precision_choice
from hasten.trainer.precision_choice import choose_precision


def test_faster_bf16_is_chosen_with_the_figures() -> None:
    choice = choose_precision("cpu", {"float32": 190e9, "bfloat16": 420e9}, source="fake")
    assert choice.precision == "bf16"
    assert "420 GFLOP/s" in choice.reason and "190 GFLOP/s" in choice.reason and "fake" in choice.reason
    config = choice.to_config()
    assert config["precision_requested"] == "auto" and config["matmul_gflops"] == {"float32": 190.0, "bfloat16": 420.0}


@pytest.mark.parametrize("bf16", [1.4e9, 190e9, 200e9])
def test_slow_or_equal_bf16_keeps_fp32(bf16: float) -> None:
    choice = choose_precision("cpu", {"float32": 190e9, "bfloat16": bf16})
    assert choice.precision == "fp32" and "not at least" in choice.reason


def test_auto_run_records_choice_and_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from hasten.workloads.runner import build_trainer

    fake = {"float32": 100e9, "bfloat16": 300e9}
    real = precision_choice.choose_precision
    monkeypatch.setattr(
        precision_choice,
        "choose_precision",
        lambda device, matmul_flops=None, source=None: real(device, fake, "fake measurement"),
    )
    trainer = build_trainer("toy", duration="2ba", precision="auto", device="cpu")
    config = trainer.state.run_info["config"]
    assert trainer.state.precision == "bf16" and config["precision"] == "bf16"
    assert config["precision_requested"] == "auto" and "fake measurement" in config["precision_reason"]
    fake["bfloat16"] = 50e9
    trainer = build_trainer("toy", duration="2ba", precision="auto", device="cpu")
    assert trainer.state.precision == "fp32" and trainer.state.run_info["config"]["precision"] == "fp32"
