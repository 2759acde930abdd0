"""EMA: an exponential moving average of the weights, used for evaluation and as the final model.

``ModelEmaV3`` is the functional form, with timm's names and decay rule: ``update(model, step)``
sets ema <- decay ema + (1 - decay) weights for parameters and floating-point buffers (BatchNorm
statistics included), copying integer buffers. The first update copies. With ``use_warmup`` the
decay ramps as 1 - (1 + step / warmup_gamma) ** -warmup_power, capped at ``decay``, so a short
run's average is not dominated by its random initialization.

The ``ema`` method updates the average after every ``update_interval``-th optimizer step, copies
the averaged weights into the model at EVAL_START and the training weights back at EVAL_END (in
place: the optimizer keeps its parameters), and leaves the model holding the average at FIT_END.
It keeps the average in fp32 even for bf16 weights: a bf16 average cannot absorb steps of
(1 - decay) x the difference, which fall below its resolution.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.core.time import Time, TimeUnit
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register

__all__ = ["EMA", "ModelEmaV3", "copy_weights"]


def _unwrap(model: nn.Module) -> nn.Module:
    """The module under ``torch.compile`` (which shares its parameters)."""
    return getattr(model, "_orig_mod", model)


def _tensors(model: nn.Module) -> list[torch.Tensor]:
    """Parameters then buffers, each once (tied weights appear once), in a stable order."""
    model = _unwrap(model)
    return [*model.parameters(), *model.buffers()]


@torch.no_grad()
def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy ``source``'s values into ``target`` in place (casting to ``target``'s dtypes)."""
    for x, y in zip(_tensors(source), _tensors(target), strict=True):
        y.detach().copy_(x)


class ModelEmaV3(nn.Module):
    """An EMA of ``model`` kept in ``.module`` (timm's ``ModelEmaV3`` interface)."""

    def __init__(
        self,
        model: nn.Module,
        decay: float = 0.9999,
        min_decay: float = 0.0,
        update_after_step: int = 0,
        use_warmup: bool = False,
        warmup_gamma: float = 1.0,
        warmup_power: float = 2 / 3,
        device: torch.device | str | None = None,
        exclude_buffers: bool = False,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not 0 <= min_decay <= decay < 1:
            raise ValueError(f"need 0 <= min_decay <= decay < 1, got min_decay={min_decay}, decay={decay}")
        self.module = copy.deepcopy(_unwrap(model)).eval()
        self.module.requires_grad_(False)
        if device is not None or dtype is not None:
            self.module.to(device=device, dtype=dtype)  # dtype applies to floating-point tensors only
        self.decay, self.min_decay, self.update_after_step = decay, min_decay, update_after_step
        self.use_warmup, self.warmup_gamma, self.warmup_power = use_warmup, warmup_gamma, warmup_power
        self.exclude_buffers = exclude_buffers

    def get_decay(self, step: int | None = None) -> float:
        """The decay for the update at optimizer step ``step`` (1-based); 0 means copy."""
        if step is None:
            return self.decay
        step = max(0, step - self.update_after_step - 1)
        if step <= 0:
            return 0.0
        if self.use_warmup:
            decay = 1 - (1 + step / self.warmup_gamma) ** -self.warmup_power
            return max(min(decay, self.decay), self.min_decay)
        return self.decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int | None = None) -> None:
        decay = self.get_decay(step)
        model = _unwrap(model)
        averaged: list[torch.Tensor] = []
        current: list[torch.Tensor] = []
        for ema_p, p in zip(self.module.parameters(), model.parameters(), strict=True):
            averaged.append(ema_p)
            current.append(p.detach().to(ema_p.device, ema_p.dtype))
        for ema_b, b in zip(self.module.buffers(), model.buffers(), strict=True):
            if ema_b.is_floating_point() and not self.exclude_buffers:
                averaged.append(ema_b)
                current.append(b.detach().to(ema_b.device, ema_b.dtype))
            else:
                ema_b.copy_(b)
        if decay == 0.0:
            torch._foreach_copy_(averaged, current)
        else:
            torch._foreach_lerp_(averaged, current, 1.0 - decay)

    @torch.no_grad()
    def set(self, model: nn.Module) -> None:
        copy_weights(model, self.module)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)


class EMA(Algorithm):
    """Keep a ``ModelEmaV3``; evaluate with it; end the run holding it.

    ``half_life`` (e.g. ``"0.05dur"``, ``"100ba"``, ``"1ep"``), when given, sets the decay so
    that a weight's influence halves over that much training: decay = 0.5 ** (update_interval /
    half_life_steps); a ``dur`` half-life scales with the budget.
    """

    name = "ema"
    touches = frozenset({"model", "eval"})
    data_parallel = True
    conflicts = {"swa": "both replace the evaluated and final weights with an average; use one weight average"}

    def __init__(
        self, decay: float = 0.999, use_warmup: bool = True, update_interval: int = 1, half_life: str | None = None
    ) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        if update_interval < 1:
            raise ValueError(f"update_interval must be >= 1, got {update_interval}")
        if half_life is not None:
            Time.parse(half_life)  # fail at build time on a malformed time
        self.decay, self.use_warmup = decay, use_warmup
        self.update_interval, self.half_life = update_interval, half_life
        self.ema: ModelEmaV3 | None = None
        self._updates = 0
        self._pending: dict[str, Any] | None = None
        self._training_weights: list[torch.Tensor] | None = None  # held during evaluation

    def match(self, event: Event, state: State) -> bool:
        if event in (Event.FIT_START, Event.FIT_END, Event.EVAL_START, Event.EVAL_END):
            return True
        return event is Event.BATCH_END and state.timestamp.batch % self.update_interval == 0

    def apply(self, event: Event, state: State) -> None:
        if event is Event.FIT_START:
            self._start(state)
        elif event is Event.BATCH_END:
            self._updates += 1
            self.ema.update(state.model, step=self._updates)  # type: ignore[union-attr]
        elif self.ema is None:
            return
        elif event is Event.EVAL_START and self._training_weights is None:
            self._training_weights = [t.detach().clone() for t in _tensors(state.model)]
            copy_weights(self.ema.module, state.model)
        elif event is Event.EVAL_END and self._training_weights is not None:
            with torch.no_grad():
                for target, held in zip(_tensors(state.model), self._training_weights, strict=True):
                    target.copy_(held)
            self._training_weights = None
        elif event is Event.FIT_END:
            copy_weights(self.ema.module, state.model)

    def _start(self, state: State) -> None:
        low_precision = any(p.is_floating_point() and p.element_size() < 4 for p in state.model.parameters())
        self.ema = ModelEmaV3(
            state.model,
            decay=self._resolve_decay(state),
            use_warmup=self.use_warmup,
            dtype=torch.float32 if low_precision else None,
        )
        if self._pending is not None:  # resuming: the checkpoint was read before FIT_START
            self.ema.module.load_state_dict(self._pending["weights"])
            self._updates = int(self._pending["updates"])
            self._pending = None

    def _resolve_decay(self, state: State) -> float:
        if self.half_life is None:
            return self.decay
        time = state.resolve(self.half_life)
        steps = time.value if time.unit is TimeUnit.BATCH else state.plan.rates.to_steps(time)  # type: ignore[union-attr]  # planned before FIT_START
        if steps <= 0:
            raise ConfigError(
                f"ema half_life {self.half_life} is no training at all", "give a positive time, e.g. 0.05dur"
            )
        return math.pow(0.5, self.update_interval / steps)

    def state_dict(self) -> dict[str, Any]:
        if self.ema is None:
            return {}
        return {"weights": self.ema.module.state_dict(), "updates": self._updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self._pending = state


register(
    MethodCard(
        name="ema",
        summary="Exponential moving average of the weights (timm's ModelEmaV3 rule); evaluation and the final "
        "model use the average",
        component="optimization",
        action="augment",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper("Polyak, Juditsky", 1992, "Acceleration of Stochastic Approximation by Averaging"),
        functional=("ModelEmaV3", "copy_weights"),
        effect="The averaged weights reach a given quality in fewer steps than the raw ones while the lr is "
        "still high; Composer's ResNet recipes and airbench use it for that",
        not_worth_it="Runs whose lr already decays to zero at the end (the raw weights then catch up); very "
        "short runs with a decay near 1 and no warm-up (the average lags); memory-bound models "
        "(one more copy of the weights and buffers)",
        export="the model holds the EMA weights after fit; checkpoints hold the raw weights plus the average "
        "under the ema method's state",
    ),
    EMA,
)
