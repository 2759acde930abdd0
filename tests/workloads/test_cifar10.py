"""``cifar10`` from the CLI on the real JPEG copy, and its baseline recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hasten.data.augment import ImageAugment
from hasten.errors import ConfigError
from hasten.models.resnet import CifarResNet
from hasten.workloads import get_workload


def test_trains_a_few_steps_from_the_cli_and_loss_falls(cli_train) -> None:  # type: ignore[no-untyped-def]
    summary, losses = cli_train("cifar10", "8ba")
    assert summary["status"] == "completed" and summary["steps"] == 8
    assert summary["samples"] == 8 * get_workload("cifar10").batch_size
    assert len(losses) == 8 and sum(losses[-2:]) / 2 < sum(losses[:2]) / 2
    assert 0.0 <= summary["final"]["accuracy"] <= 1.0


def test_baseline_is_the_no_tricks_recipe(data_dir: Path, session_cache: Path) -> None:
    workload = get_workload("cifar10")
    parts = workload.build(seed=0, device=torch.device("cpu"), data_dir=str(data_dir))
    assert isinstance(parts.model, CifarResNet)
    assert parts.train_data.inputs.dtype == torch.uint8 and len(parts.train_data.inputs) == 50_000
    assert isinstance(parts.train_data.transform, ImageAugment) and parts.train_data.transform.flip
    assert parts.train_data.transform.crop_padding == 4
    optimizer = parts.optimizer(parts.model)
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert group["nesterov"] and group["momentum"] == 0.9 and group["weight_decay"] > 0
    assert parts.scheduler(0, 1000) < 0.05 and parts.scheduler(999, 1000) < 0.01  # warm-up, then decay
    assert sum(len(y) for _, y in parts.eval_data) == 10_000
    assert parts.extra["data_source"].startswith("cifar10-jpeg:")


def test_variant_changes_knobs_and_refuses_unknown_ones() -> None:
    base = get_workload("cifar10")
    wider = base.variant(widths=(48, 96, 192), lr=0.05)
    assert wider.widths == (48, 96, 192) and wider.lr == 0.05 and base.widths != (48, 96, 192)
    assert wider.name == "cifar10"
    with pytest.raises(ConfigError, match="unknown cifar10 recipe setting"):
        base.variant(learning_rate=0.1)
