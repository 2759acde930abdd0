"""Shared checks for the GPT architecture methods: the method applied at INIT gives the same
model as the CharGPT option, trains, and refuses a model it cannot change."""

from __future__ import annotations

import pytest
import torch

from hasten.core.algorithm import Algorithm
from hasten.errors import ConfigError
from hasten.models.gpt import CharGPT, GPTConfig
from hasten.models.mnist import MnistCNN
from tests.methods.model_helpers import gpt_trainer_factory, small_gpt

CONFIG = {"vocab_size": 65, "context": 32, "layers": 2, "heads": 2, "width": 32}


def check_same_function_as_option(apply, option: dict) -> None:  # type: ignore[no-untyped-def]
    """``apply(model)`` on a default CharGPT computes what ``CharGPT(option)`` computes with the
    same weights."""
    torch.manual_seed(0)
    changed = CharGPT(GPTConfig(**CONFIG))
    assert apply(changed) > 0
    built = CharGPT(GPTConfig(**CONFIG, **option))
    built.load_state_dict(changed.state_dict(), strict=True)
    ids = torch.randint(0, 65, (2, 32))
    with torch.no_grad():
        assert torch.allclose(changed(ids), built(ids), atol=1e-6)


def check_trains_and_refuses(data_dir, method: type[Algorithm]) -> None:  # type: ignore[no-untyped-def]
    result = gpt_trainer_factory(data_dir, algorithms=lambda: [method()])().fit()
    assert result.status == "completed" and result.steps == 8
    trainer = gpt_trainer_factory(data_dir, algorithms=lambda: [method()], model=lambda: MnistCNN())
    with pytest.raises(ConfigError, match=f"{method.name} found no"):
        trainer()


__all__ = ["check_same_function_as_option", "small_gpt", "check_trains_and_refuses"]
