"""masking_schedule: the rate over a run follows the schedule, exact resume, bad specs refused."""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner

from hasten.cli.main import cli
from hasten.core.callback import Callback
from hasten.core.metrics import MaskedCrossEntropy
from hasten.data.masked_lm import IGNORE_INDEX, MaskedWindows
from hasten.errors import ConfigError
from hasten.methods.masking_schedule import (
    MaskingSchedule,
    masking_rate,
    parse_masking_schedule,
)
from hasten.models.bert import BertConfig, CharBert
from tests.harness import (
    assert_resumes_exactly,
    seeded_trainer_factory,
    shakespeare_tokens,
)
from tests.methods.data_helpers import text_trainer_factory


class RateRecorder(Callback):
    def __init__(self) -> None:
        self.rates: list[float] = []
        self.selected: list[float] = []

    def on_before_forward(self, state) -> None:  # type: ignore[no-untyped-def]
        self.rates.append(state.train_data.mask_rate)
        self.selected.append((state.targets != IGNORE_INDEX).float().mean().item())


def mlm_factory(data_dir, schedule: str, batch_size: int = 64, **kwargs):  # type: ignore[no-untyped-def]
    def parts() -> dict:
        tokens, vocab = shakespeare_tokens(str(data_dir))
        config = BertConfig(vocab_size=vocab + 1, context=32, layers=1, heads=2, width=16)
        source = MaskedWindows(tokens, 32, batch_size, mask_id=config.mask_id, vocab_size=vocab, seed=0)
        val = next(MaskedWindows(tokens, 32, 16, mask_id=config.mask_id, vocab_size=vocab, seed=9).batches(0))
        return {
            "model": CharBert(config),
            "train_data": source,
            "eval_data": [val],
            "optimizer": lambda m: torch.optim.AdamW(m.parameters(), lr=3e-3),
            "max_duration": "10ba",
            "algorithms": [MaskingSchedule(schedule)],
            "metrics": {"loss": MaskedCrossEntropy()},
        }

    return seeded_trainer_factory(parts, **kwargs)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("constant-0.15", [0.15, 0.15, 0.15]),
        ("linear-0.3-0.15", [0.3, 0.225, 0.15]),
        ("cosine-0.3-0.15", [0.3, 0.225, 0.15]),
        ("step-0.3-0.15", [0.3, 0.15, 0.15]),
        ("step-0.3-0.15-0.75", [0.3, 0.3, 0.15]),
        ("linear-0.15-0.3", [0.15, 0.225, 0.3]),
    ],
)
def test_schedule_values_at_start_middle_end(spec: str, expected: list[float]) -> None:
    assert [masking_rate(spec, p) for p in (0.0, 0.5, 1.0)] == pytest.approx(expected)
    assert str(parse_masking_schedule(spec)) == spec


def test_cosine_is_a_half_cosine() -> None:
    assert masking_rate("cosine-0.4-0.2", 0.25) == pytest.approx(0.2 + 0.2 * 0.5 * (1 + math.cos(math.pi / 4)))


@pytest.mark.parametrize(
    "spec", ["linear-0.3-1.2", "constant--0.1", "cosine-0.3", "exp-0.3-0.15", "linear-a-b", "step-0.3-0.15-2"]
)
def test_bad_schedules_are_one_config_error(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_masking_schedule(spec)


def test_rates_over_a_run_match_the_schedule(data_dir) -> None:  # type: ignore[no-untyped-def]
    recorder = RateRecorder()
    result = mlm_factory(data_dir, "linear-0.5-0.1", callbacks=[recorder]).__call__().fit()
    assert result.status == "completed"
    assert recorder.rates == pytest.approx([0.5 + (0.1 - 0.5) * k / 10 for k in range(10)])
    # the batches themselves were corrupted at those rates (64 x 32 positions each)
    assert all(abs(s - r) < 0.06 for s, r in zip(recorder.selected, recorder.rates))


def test_resumes_exactly(data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert_resumes_exactly(mlm_factory(data_dir, "cosine-0.3-0.15", batch_size=8), tmp_path)


def test_a_source_without_a_rate_is_refused(data_dir) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="mask_rate"):
        text_trainer_factory(data_dir, algorithms=lambda: [MaskingSchedule()])()


def test_cli_refuses_a_rate_outside_the_unit_interval(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "mlm",
            "--method",
            "masking_schedule:schedule=linear-0.3-1.5",
            "--store",
            str(tmp_path / "r.db"),
            "--duration",
            "1ba",
        ],
    )
    assert result.exit_code == 2
    assert "outside [0, 1]" in result.output and len(result.output.strip().splitlines()) == 1
