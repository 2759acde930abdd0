"""Helpers for the model-method tests: the Trainer's arithmetic replayed by hand (so a method's
functional form can be checked against its Algorithm), a small GPT trainer on real Tiny
Shakespeare, and weight comparison."""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

from hasten.core.metrics import CrossEntropy
from hasten.data.memory import TensorBatches
from hasten.models import CharGPT, GPTConfig
from hasten.trainer.trainer import Trainer, default_loss, seed_everything
from tests.harness import cifar_slice, normalize_images, seeded_trainer_factory, shakespeare_tokens, text_windows

Hook = Callable[[int, float], None]


def weights_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


def cifar_source(data_dir, n: int = 256, batch_size: int = 32) -> TensorBatches:
    """The training data ``tests.harness.image_trainer_factory`` uses."""
    x, y = cifar_slice(str(data_dir), n)
    return TensorBatches(normalize_images(x), y, batch_size, seed=0)


def train_by_hand(
    model: nn.Module,
    source: TensorBatches,
    steps: int = 8,
    *,
    optimizer: Callable[[nn.Module], torch.optim.Optimizer] = lambda m: torch.optim.SGD(
        m.parameters(), lr=0.05, momentum=0.9
    ),
    on_batch: Callable[[int, float], None] | None = None,
    before_step: Callable[[int, torch.optim.Optimizer], object] | None = None,
    after_step: Callable[[int, torch.optim.Optimizer, object], None] | None = None,
    inputs: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
    precision: str = "fp32",
) -> nn.Module:
    """The Trainer's loop for a plain run (no schedule, no clipping, one micro-batch), written
    out: zero_grad, forward, default loss, backward, step. ``on_batch(step, progress)`` runs where
    BATCH_START fires; ``before_step`` may return a token handed to ``after_step``."""
    torch.use_deterministic_algorithms(True)
    opt = optimizer(model)
    model.train()
    per_epoch = len(source)
    batches = iter(())
    for step in range(steps):
        if step % per_epoch == 0:
            batches = iter(source.batches(step // per_epoch))
        x, y = next(batches)
        if on_batch is not None:
            on_batch(step, step / steps)
        opt.zero_grad(set_to_none=True)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
        with autocast:
            out = model(inputs(x))
        with autocast:
            loss = default_loss(out, y)
        (loss * 1.0).backward()
        token = before_step(step, opt) if before_step is not None else None
        opt.step()
        if after_step is not None:
            after_step(step, opt, token)
    return model


def reseed() -> None:
    """What the Trainer does right after it receives the model."""
    seed_everything(0)


def small_gpt(layers: int = 2) -> CharGPT:
    return CharGPT(GPTConfig(vocab_size=65, context=32, layers=layers, heads=2, width=32))


def gpt_source(data_dir, context: int = 32, batch_size: int = 8) -> TensorBatches:
    tokens, _ = shakespeare_tokens(str(data_dir), 20_000)
    x, y = text_windows(tokens, context)
    return TensorBatches(x, y, batch_size, seed=0, tokens_per_sample=context)


def gpt_trainer_factory(
    data_dir, algorithms: Callable[[], list] = list, model: Callable[[], nn.Module] = small_gpt, **trainer_kwargs
) -> Callable[..., Trainer]:
    """A fresh, seeded Trainer training a small CharGPT on real Tiny Shakespeare windows."""

    def parts() -> dict:
        source = gpt_source(data_dir)
        return dict(
            model=model(),
            train_data=source,
            eval_data=TensorBatches(source.inputs[:16], source.targets[:16], 8, shuffle=False),
            optimizer=lambda m: torch.optim.AdamW(m.parameters(), lr=3e-3),
            max_duration="8ba",
            algorithms=algorithms(),
            metrics=[CrossEntropy()],
        )

    return seeded_trainer_factory(parts, **trainer_kwargs)
