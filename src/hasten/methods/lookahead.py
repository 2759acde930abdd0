"""Lookahead: the inner optimizer takes k fast steps, then slow weights move a fraction toward them.

Zhang et al. (2019): slow weights phi start at the weights before the first step; after every
k inner steps, phi <- phi + alpha (theta - phi) and the fast weights theta restart from phi. The
inner optimizer keeps its own state (momentum) across the sync. Works around any optimizer,
SAM and Muon included (the closure is passed through when the inner one needs it).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.optim.factory import wrap_optimizer
from hasten.optim.wrapper import OptimizerWrapper

__all__ = ["Lookahead", "LookaheadMethod"]


class Lookahead(OptimizerWrapper):
    """Wrap ``base_optimizer``: ``k`` fast steps, then slow <- slow + ``alpha`` (fast - slow), fast <- slow."""

    def __init__(self, base_optimizer: torch.optim.Optimizer, k: int = 5, alpha: float = 0.5) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        super().__init__(base_optimizer)
        self.k, self.alpha = k, alpha
        self.steps = 0
        self.slow: list[torch.Tensor] | None = None  # made at the first step, from the weights then

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> Any:  # type: ignore[override]
        params = self.params()
        if self.slow is None:
            self.slow = [p.detach().clone() for p in params]
        loss = self.base_step(closure)
        self.steps += 1
        if self.steps % self.k == 0:
            for param, slow in zip(params, self.slow):
                slow.add_(param - slow, alpha=self.alpha)
                param.copy_(slow)
        return loss

    def wrapper_state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "slow": [s.clone() for s in self.slow] if self.slow is not None else []}

    def load_wrapper_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        saved = state["slow"]
        if not saved:
            self.slow = None
            return
        params = self.params()
        if len(saved) != len(params) or any(s.shape != p.shape for s, p in zip(saved, params)):
            raise ValueError("lookahead slow weights do not match this model's parameters")
        self.slow = [s.to(device=p.device, dtype=p.dtype).clone() for s, p in zip(saved, params)]


class LookaheadMethod(Algorithm):
    """Wrap the run's optimizer in ``Lookahead`` at INIT (outside ``sam`` when both are used)."""

    name = "lookahead"
    touches = frozenset({"optimizer"})
    data_parallel = True
    priority = 60  # wraps last: Lookahead(SAM(Muon(...)))

    def __init__(self, k: int = 5, alpha: float = 0.5) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.k, self.alpha = k, alpha

    def match(self, event: Event, state: State) -> bool:
        return event is Event.INIT

    def apply(self, event: Event, state: State) -> None:
        wrap_optimizer(state, lambda optimizer: Lookahead(optimizer, k=self.k, alpha=self.alpha))


register(
    MethodCard(
        name="lookahead",
        summary="k fast steps of any optimizer, then slow weights move alpha of the way toward them and the "
        "fast weights restart there",
        component="optimization",
        action="augment",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper(
            "Zhang, Lucas, Hinton, Ba", 2019, "Lookahead Optimizer: k steps forward, 1 step back", "1907.08610"
        ),
        functional=("Lookahead",),
        effect="Lower variance of the weights and more robustness to the inner optimizer's lr and momentum; "
        "the paper reports faster convergence on CIFAR and ImageNet at negligible cost per step",
        not_worth_it="Well-tuned baselines with a schedule that decays to zero (the paper's gains are modest "
        "there); memory-bound runs (one more copy of the weights); evaluations between syncs see "
        "the fast weights, so intermediate evals are noisier than the slow weights",
        export="unchanged: only the optimizer differs",
    ),
    LookaheadMethod,
)
