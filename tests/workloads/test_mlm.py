"""``mlm``: trains from the CLI; the validation task is the same for every recipe and seed."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from hasten.data.masked_lm import IGNORE_INDEX, MaskedWindows
from hasten.models.bert import CharBert
from hasten.workloads import build_trainer, get_workload


def test_trains_a_few_steps_from_the_cli_and_loss_falls(cli_train) -> None:  # type: ignore[no-untyped-def]
    summary, losses = cli_train("mlm", "30ba")
    assert summary["status"] == "completed" and summary["steps"] == 30 and summary["tokens"] == 30 * 32 * 64
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.25
    assert summary["final"]["loss"] < math.log(65)
    assert 0.0 < summary["final"]["accuracy"] < 1.0


def eval_set(parts) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    xs, ys = zip(*parts.eval_data)
    return torch.cat(xs), torch.cat(ys)


def test_validation_is_identical_for_every_seed_and_recipe(data_dir: Path) -> None:
    workload = get_workload("mlm")
    a = workload.build(seed=0, device=torch.device("cpu"), data_dir=str(data_dir))
    b = workload.build(seed=5, device=torch.device("cpu"), data_dir=str(data_dir))
    xa, ya = eval_set(a)
    xb, yb = eval_set(b)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert xa.shape == (111_540 // 64, 64)
    assert abs((ya != IGNORE_INDEX).float().mean().item() - 0.15) < 0.005  # a fixed 15% rate
    assert isinstance(a.model, CharBert) and isinstance(a.train_data, MaskedWindows)
    assert a.train_data.mask_rate == 0.15
    # a recipe that trains at another rate is judged on the very same batches
    trainer = build_trainer(
        "mlm", ["masking_schedule:schedule=constant-0.4"], duration="2ba", seed=0, device="cpu", data_dir=str(data_dir)
    )
    xt, yt = (torch.cat(t) for t in zip(*trainer.state.eval_data))
    assert torch.equal(xt, xa) and torch.equal(yt, ya)
