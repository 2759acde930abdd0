"""unit_scaling as a catalogue method: the model and optimizer swap, the record, the CLI and its refusals."""

import json

import pytest
import torch
from click.testing import CliRunner

from hasten.cli.main import cli
from hasten.core.callback import Callback
from hasten.errors import ConfigError
from hasten.methods import build_method, get_method
from hasten.models.gpt import CharGPT, GPTConfig
from hasten.models.unit_gpt import UnitGPT
from hasten.numerics.fp8 import FP8Linear, fp8_hardware_available
from hasten.optim.unit_transfer import group_lrs
from hasten.trainer.trainer import Trainer


def tiny_trainer(method: str, model: torch.nn.Module | None = None, steps: int = 40) -> Trainer:
    torch.manual_seed(0)
    data = torch.randint(0, 65, (64, 17))
    batches = [(data[i : i + 8, :-1], data[i : i + 8, 1:]) for i in range(0, 64, 8)]
    return Trainer(
        model=model or CharGPT(GPTConfig(layers=2, width=32, heads=2, context=16)),
        train_data=batches,
        eval_data=batches[:2],
        max_duration=f"{steps}ba",
        algorithms=[build_method(method)],
        device="cpu",
        optimizer=lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.8, 0.95)),
    )


def test_swaps_in_the_unit_model_and_the_transfer_optimizer_and_records_fp8():
    trainer = tiny_trainer("unit_scaling:fp8=true,lr=0.05,base_width=16", steps=4)
    assert isinstance(trainer.state.model, UnitGPT)
    result = trainer.fit()
    optimizer = trainer.state.optimizer
    assert group_lrs(optimizer)["hidden"] == pytest.approx(0.05 * (16 / 32) ** 0.5)
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.95)  # the baseline's betas carry over
    fp8 = result.run_info["config"]["fp8"]
    assert ("emulated" in fp8) != fp8_hardware_available()
    assert result.run_info["config"]["unit_scaling"]["base_width"] == 16
    assert result.status == "completed"


class Losses(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_batch_end(self, state) -> None:
        self.losses.append(state.train_loss)


def test_a_short_fp8_emulated_run_learns():
    trainer = tiny_trainer("unit_scaling:fp8=true,fp8_backend=emulated", steps=64)
    record = Losses()
    trainer.engine.callbacks.append(record)
    trainer.fit()
    first, last = record.losses[:8], record.losses[-8:]  # one pass over the 8 batches each
    assert sum(last) / 8 < sum(first) / 8 - 0.8


def test_standard_parametrization_in_fp8_keeps_the_model():
    trainer = tiny_trainer("unit_scaling:unit=false,fp8=true", steps=4)
    model = trainer.state.model
    assert isinstance(model, CharGPT) and isinstance(model.blocks[0].mlp.fc, FP8Linear)
    assert trainer.state.run_info["config"]["fp8_layers"] == 8


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("unit_scaling:tau=1.5", "tau must lie strictly between 0 and 1"),
        ("unit_scaling:tau=0", "tau must lie strictly between 0 and 1"),
        ("unit_scaling:unit=false", "changes nothing"),
        ("unit_scaling:fp8_backend=int4", "unknown FP8 backend"),
    ],
)
def test_bad_parameters_are_config_errors(spec, needle):
    with pytest.raises(ConfigError, match=needle):
        build_method(spec)


def test_refuses_other_models_for_the_unit_model():
    with pytest.raises(ConfigError, match="rebuilds the character GPT"):
        tiny_trainer("unit_scaling", model=torch.nn.Sequential(torch.nn.Embedding(65, 8), torch.nn.Linear(8, 65)))


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("unit_scaling:tau=2", "tau must lie strictly between 0 and 1"),
        ("unit_scaling:base_width=512", "transfer base width 512 is outside 1..128"),
        pytest.param(
            "unit_scaling:fp8=true,fp8_backend=scaled_mm",
            "no FP8 tensor cores",
            marks=pytest.mark.skipif(fp8_hardware_available(), reason="this machine has FP8 tensor cores"),
        ),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(store_path, data_dir, spec, needle):
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "shakespeare",
            "--method",
            spec,
            "--duration",
            "2ba",
            "--data-dir",
            str(data_dir),
            "--no-checkpoints",
        ],
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("error: ")


@pytest.mark.slow  # the whole validation split is evaluated in emulated FP8
def test_cli_trains_shakespeare_in_fp8(store_path, data_dir):
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "shakespeare",
            "--method",
            "unit_scaling:fp8=true",
            "--duration",
            "3ba",
            "--data-dir",
            str(data_dir),
            "--no-checkpoints",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and summary["methods"][0]["name"] == "unit_scaling"
    assert summary["methods"][0]["params"]["fp8"] is True


def test_card_is_registered():
    card = get_method("unit_scaling").card
    assert card.component == "model" and card.paper.arxiv == "2502.05967"
    assert card.defaults["fp8"] is False and card.defaults["tau"] is None
