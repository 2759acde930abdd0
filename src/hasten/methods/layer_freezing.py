"""Layer freezing on FreezeOut's schedule (Brock et al. 2017): early layers stop training first.

Each layer ``i`` of ``n`` (in definition order) gets a freeze time, as a fraction of the run,

    t_i = scale(t_0 + (1 - t_0) * i / (n - 1)),   scale = x, x**2 or x**3 (linear/squared/cubic)

so the first layer freezes at ``scale(t_0)`` and the last (the head) never does. Until
``t_i`` the layer's learning rate is annealed to zero with a cosine,
``0.5 * (1 + cos(pi * t / t_i))`` (divided by ``t_i`` when ``scale_lr``, FreezeOut's
"scaled" variant, so every layer travels about as far); from ``t_i`` on its parameters
stop requiring gradients, so the backward pass no longer reaches it, and it runs in eval
mode (frozen batch-norm statistics), as in FreezeOut.

The per-layer factor multiplies the run's own schedule. It is applied by scaling that
layer's optimizer update after each step, which equals scaling its learning rate for any
optimizer whose update is proportional to the learning rate (SGD with or without momentum,
Adam/AdamW, Muon), and leaves the optimizer's param groups alone (so checkpoints are
unchanged). Freezing is a function of training progress only, hence exact on resume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.methods.surgery import Target, find_modules, require_some

SCALINGS = {"linear": 1, "squared": 2, "cubic": 3}


def freeze_times(num_units: int, freeze_start: float = 0.8, scaling: str = "cubic") -> list[float]:
    """FreezeOut's freeze time of each unit as a fraction of the run; the last one is 1.0 (never)."""
    if not 0.0 < freeze_start <= 1.0:
        raise ConfigError(f"freeze_start must be in (0, 1], got {freeze_start}", "FreezeOut uses 0.5-0.8")
    if scaling not in SCALINGS:
        raise ConfigError(f"unknown freezing scaling {scaling!r}", f"use one of {', '.join(SCALINGS)}")
    if num_units == 1:
        return [1.0]
    power = SCALINGS[scaling]
    return [(freeze_start + (1.0 - freeze_start) * i / (num_units - 1)) ** power for i in range(num_units)]


def freezeout_lr_factor(progress: float, freeze_time: float, scale_lr: bool = True) -> float:
    """The layer's learning-rate multiplier at ``progress``: cosine to zero at ``freeze_time``."""
    if freeze_time >= 1.0:
        return 1.0
    factor = 0.5 * (1.0 + math.cos(math.pi * min(progress / freeze_time, 1.0)))
    return factor / freeze_time if scale_lr else factor


def freezable_units(model: nn.Module, target: Target | None = None) -> list[tuple[str, nn.Module]]:
    """The "layers" FreezeOut freezes: modules that own trainable parameters directly, in
    definition order (or the modules matching ``target``)."""
    if target is not None:
        return find_modules(model, target)
    return [
        (name, module)
        for name, module in model.named_modules()
        if any(p.requires_grad for p in module.parameters(recurse=False))
    ]


@dataclass
class FreezeOutPlan:
    """Which parameters freeze when. A parameter shared by several units (tied weights)
    belongs to the one that freezes last."""

    names: list[str]
    units: list[nn.Module]
    times: list[float]
    params: list[list[nn.Parameter]] = field(default_factory=list)

    @classmethod
    def build(
        cls, model: nn.Module, freeze_start: float = 0.8, scaling: str = "cubic", target: Target | None = None
    ) -> "FreezeOutPlan":
        units = freezable_units(model, target)
        times = freeze_times(len(units), freeze_start, scaling) if units else []
        owner: dict[int, int] = {}
        for index, (_, unit) in enumerate(units):
            for p in unit.parameters(recurse=target is not None):
                if p.requires_grad and (id(p) not in owner or times[index] >= times[owner[id(p)]]):
                    owner[id(p)] = index
        params: list[list[nn.Parameter]] = [[] for _ in units]
        seen: set[int] = set()
        for index, (_, unit) in enumerate(units):
            for p in unit.parameters(recurse=target is not None):
                if owner.get(id(p)) == index and id(p) not in seen:
                    params[index].append(p)
                    seen.add(id(p))
        return cls([n for n, _ in units], [u for _, u in units], times, params)

    def freeze(self, progress: float) -> list[str]:
        """Freeze every unit whose time has come (never unfreezes); returns the frozen names."""
        frozen = []
        for name, unit, time, params in zip(self.names, self.units, self.times, self.params):
            if progress >= time:
                for p in params:
                    p.requires_grad_(False)
                unit.eval()
                frozen.append(name)
        return frozen

    def lr_factors(self, progress: float, scale_lr: bool = True) -> list[tuple[list[nn.Parameter], float]]:
        """``(parameters, factor)`` for every still-training unit whose factor is not 1."""
        out = []
        for time, params in zip(self.times, self.params):
            if progress < time < 1.0:
                out.append((params, freezeout_lr_factor(progress, time, scale_lr)))
        return out


def freeze_layers(
    model: nn.Module, progress: float, freeze_start: float = 0.8, scaling: str = "cubic", target: Target | None = None
) -> list[str]:
    """Freeze the units whose FreezeOut time is at or before ``progress`` (fraction of the run)."""
    return FreezeOutPlan.build(model, freeze_start, scaling, target).freeze(progress)


def unfreeze_layers(model: nn.Module) -> None:
    """Make every parameter trainable again (to fine-tune further); export does not need it."""
    for p in model.parameters():
        p.requires_grad_(True)


class UpdateScaler:
    """Scale the next optimizer update of some parameters: snapshot before ``step()``, then
    ``p = before + factor * (p - before)`` after it. Equal to scaling their learning rate for
    optimizers whose update is proportional to it."""

    def __init__(self, groups: list[tuple[list[nn.Parameter], float]]) -> None:
        self.groups = [([p for p in params if p.grad is not None], factor) for params, factor in groups]
        with torch.no_grad():
            self.before = [[p.detach().clone() for p in params] for params, _ in self.groups]

    def apply(self) -> None:
        with torch.no_grad():
            for (params, factor), before in zip(self.groups, self.before):
                if params:
                    torch._foreach_lerp_([p.data for p in params], before, 1.0 - factor)


class LayerFreezing(Algorithm):
    """FreezeOut: plan at FIT_START (after all surgery), freeze at BATCH_START, scale updates
    around the optimizer step."""

    name = "layer_freezing"
    touches = frozenset({"model", "optimizer"})
    data_parallel = False
    data_parallel_note = "freezing layers mid-run changes which parameters DDP all-reduces"
    api_only = frozenset({"target"})  # a Python callable or class, not a CLI value
    priority = 60
    conflicts = {
        "compile": "each freeze changes requires_grad, which makes torch.compile recompile (in training time) "
        "and fall back to eager after torch._dynamo.config.recompile_limit recompiles",
    }

    def __init__(
        self,
        freeze_start: float = 0.8,
        scaling: str = "cubic",
        lr_annealing: bool = True,
        scale_lr: bool = True,
        *,
        target: Target | None = None,
    ) -> None:
        try:
            freeze_times(2, freeze_start, scaling)
        except ConfigError as exc:
            raise ValueError(exc.problem) from None
        self.freeze_start = freeze_start
        self.scaling = scaling
        self.lr_annealing = lr_annealing
        self.scale_lr = scale_lr
        if target is not None and not callable(target) and not isinstance(target, tuple):
            raise ValueError("target must be a module class, a tuple of classes or a function (name, module) -> bool")
        self._target = target
        self._plan: FreezeOutPlan | None = None
        self._scaler: UpdateScaler | None = None
        self._factors: list[tuple[list[nn.Parameter], float]] = []

    def match(self, event: Event, state: State) -> bool:
        if event in (Event.FIT_START, Event.BATCH_START):
            return True
        return self.lr_annealing and event in (Event.BEFORE_OPTIMIZER_STEP, Event.AFTER_OPTIMIZER_STEP)

    def apply(self, event: Event, state: State) -> None:
        if event is Event.FIT_START:
            self._plan = FreezeOutPlan.build(state.model, self.freeze_start, self.scaling, self._target)
            require_some(
                len(self._plan.units), self.name, "modules with trainable parameters", "check the target predicate"
            )
        elif event is Event.BATCH_START:
            progress = state.progress
            assert self._plan is not None, "planned at FIT_START"
            self._plan.freeze(progress)
            self._factors = self._plan.lr_factors(progress, self.scale_lr) if self.lr_annealing else []
        elif event is Event.BEFORE_OPTIMIZER_STEP:
            self._scaler = UpdateScaler(self._factors) if self._factors else None
        elif self._scaler is not None:
            self._scaler.apply()
            self._scaler = None


CARD = MethodCard(
    name="layer_freezing",
    summary="FreezeOut: anneal each layer's learning rate to zero on a staggered schedule, then freeze it.",
    component="model",
    action="remove",
    mechanism="step-cost",
    bottleneck=("compute",),
    paper=Paper(
        "Andrew Brock, Theodore Lim, J.M. Ritchie, Nick Weston",
        2017,
        "FreezeOut: Accelerate Training by Progressively Freezing Layers",
        "1706.04983",
    ),
    when="0.51-1.0dur",
    export="unchanged: frozen parameters are ordinary weights (unfreeze_layers(model) to train further)",
    not_worth_it="peers (Composer) found no better time-quality tradeoff on ResNet-50 and about 0.5-1% accuracy "
    "lost; FreezeOut's own numbers: savings above ~20% cost accuracy. The update scaling copies "
    "the annealed weights once per step, which small or memory-bound models feel.",
    effect="no backward pass or update for frozen early layers late in the run: fewer FLOPs per step",
    applies_to=("any",),
    functional=("freeze_layers", "freeze_times", "freezeout_lr_factor", "FreezeOutPlan", "UpdateScaler"),
)

register(CARD, LayerFreezing)
