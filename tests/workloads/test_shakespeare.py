"""``shakespeare`` from the CLI, and the recipe details that make it nanoGPT's CPU baseline."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from hasten.data.text import RandomWindows
from hasten.models.gpt import CharGPT
from hasten.workloads import get_workload


def test_trains_a_few_steps_from_the_cli_and_loss_falls(cli_train) -> None:  # type: ignore[no-untyped-def]
    summary, losses = cli_train("shakespeare", "40ba")
    assert summary["status"] == "completed" and summary["steps"] == 40 and summary["tokens"] == 40 * 12 * 64
    assert len(losses) >= 8 and sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.3
    assert summary["final"]["loss"] < math.log(65) - 0.5  # whole-split validation loss, below uniform


def test_recipe_is_nanogpts_cpu_configuration(data_dir: Path) -> None:
    workload = get_workload("shakespeare")
    parts = workload.build(seed=0, device=torch.device("cpu"), data_dir=str(data_dir))
    assert isinstance(parts.model, CharGPT) and parts.model.parameters_without_positions() == 795_904
    assert isinstance(parts.train_data, RandomWindows)
    assert parts.train_data.batch_size == 12 and parts.train_data.context == 64
    optimizer = parts.optimizer(parts.model)
    assert isinstance(optimizer, torch.optim.AdamW)
    decayed, plain = optimizer.param_groups
    assert decayed["lr"] == 1e-3 and decayed["betas"] == (0.9, 0.99)
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert parts.grad_clip_norm == 1.0
    schedule = parts.scheduler
    assert schedule(0, 2000) == 1 / 100 and schedule(99, 2000) == 1.0
    assert abs(schedule(1999, 2000) - 0.1) < 1e-4  # cosine down to 1e-4
    windows = sum(len(x) for x, _ in parts.eval_data)
    assert windows == 111_539 // 64  # the whole validation split, every window once
    assert workload.default_duration == "2000ba" and not workload.higher_is_better


def test_settings_change_shape_optimizer_and_schedule(data_dir: Path) -> None:
    import pytest

    from hasten.errors import ConfigError
    from hasten.optim.schedules import WarmupTrapezoid

    base = get_workload("shakespeare")
    workload = base.with_params(
        {
            "batch": 32,
            "layers": 2,
            "width": 64,
            "position": "rotary",
            "tied_head": False,
            "lr": 3e-3,
            "schedule": "trapezoid",
            "warmup": 0,
            "cooldown": 0.5,
            "min_lr": 0.0,
        }
    )
    assert base.params["batch"] == 12  # the registered workload is unchanged
    assert workload.changed_params()["batch"] == 32 and "heads" not in workload.changed_params()
    parts = workload.build(seed=0, device=torch.device("cpu"), data_dir=str(data_dir))
    assert parts.train_data.batch_size == 32 and len(parts.model.blocks) == 2
    assert parts.model.config.width == 64 and parts.model.position_embedding is None
    assert parts.optimizer(parts.model).param_groups[0]["lr"] == 3e-3
    assert isinstance(parts.scheduler, WarmupTrapezoid) and parts.scheduler(0, 100) == 1.0
    with pytest.raises(ConfigError, match="unknown schedule 'step'"):
        base.with_params({"schedule": "step"}).build(seed=0, device=torch.device("cpu"), data_dir=str(data_dir))
    with pytest.raises(ConfigError, match="not divisible"):
        base.with_params({"width": 30}).build(seed=0, device=torch.device("cpu"), data_dir=str(data_dir))
