"""Helpers for the data-method tests: a bare State to drive one algorithm by hand, a callback that
records what the model is fed, and a tiny language-model trainer on real Tiny Shakespeare."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from hasten.core.callback import Callback
from hasten.core.engine import Engine
from hasten.core.event import Event
from hasten.core.metrics import CrossEntropy
from hasten.core.state import State
from hasten.core.time import Time
from hasten.data.memory import TensorBatches
from hasten.trainer.trainer import Trainer, default_loss
from tests.harness import seeded_trainer_factory, shakespeare_tokens, text_windows


def bare_state(
    algorithms=(), model: nn.Module | None = None, max_duration: str = "10ba", **fields
) -> tuple[State, Engine]:
    """A State and Engine with no Trainer around them, for driving events one at a time."""
    state = State(
        model=model or nn.Identity(),
        loss_fn=fields.pop("loss_fn", default_loss),
        max_duration=Time.parse(max_duration),
        train_data=fields.pop("train_data", None),
        device=torch.device("cpu"),
        **fields,
    )
    return state, Engine(state, list(algorithms))


class FedRecorder(Callback):
    """Records the inputs and targets the model is fed at each forward pass, and the loss."""

    def __init__(self) -> None:
        self.inputs: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        self.losses: list[float] = []

    def on_before_forward(self, state: State) -> None:
        self.inputs.append(state.inputs.detach().clone())
        self.targets.append(state.targets.detach().clone())

    def on_after_loss(self, state: State) -> None:
        self.losses.append(float(state.loss.detach()))


class BigramLM(nn.Module):
    """Next-token logits from the current token alone: works at any sequence length."""

    def __init__(self, vocab: int, width: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.embed(tokens)))


def text_trainer_factory(
    data_dir, algorithms: Callable[[], list] = list, context: int = 64, batch_size: int = 8, **trainer_kwargs
) -> Callable[..., Trainer]:
    """A fresh, seeded Trainer on real Tiny Shakespeare windows with a bigram model."""

    def parts() -> dict:
        tokens, vocab = shakespeare_tokens(str(data_dir))
        x, y = text_windows(tokens, context)
        return dict(
            model=BigramLM(vocab),
            train_data=TensorBatches(x, y, batch_size, seed=0, tokens_per_sample=context),
            eval_data=TensorBatches(x[:16], y[:16], 8, shuffle=False),
            optimizer=lambda m: torch.optim.AdamW(m.parameters(), lr=3e-3),
            max_duration="10ba",
            algorithms=algorithms(),
            metrics=[CrossEntropy()],
        )

    return seeded_trainer_factory(parts, **trainer_kwargs)


def fire(engine: Engine, *events: Event) -> None:
    for event in events:
        engine.run_event(event)
