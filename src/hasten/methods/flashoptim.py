"""FlashOptim (Gonzalez Ortiz et al. 2026) as catalogue methods: ``flash_adamw``, ``flash_sgd``, ``flash_lion``.

Each casts the model to bf16 at INIT and swaps the run's optimizer for its FlashOptim twin
(AdamW -> FlashAdamW, Adam -> FlashAdam, SGD -> FlashSGD), keeping the workload's param groups
and hyperparameters when the families match; give ``lr`` (and friends) when they do not.
After the first step the memory report (bytes per parameter, from tensor storage) goes into
the run record under ``config.memory``. The functional twins are ``hasten.optim.FlashAdamW``
and friends plus ``cast_model`` and ``enable_gradient_release``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.optim.factory import replace_optimizer
from hasten.optim.flash import (
    FlashAdam,
    FlashAdamW,
    FlashLion,
    FlashOptimizer,
    FlashSGD,
    cast_model,
    enable_gradient_release,
    memory_report,
)
from hasten.optim.flash.gradient_release import GradientRelease
from hasten.optim.scheduling import apply_schedule

_OPTIMIZER_SWAPS = ("flash_adamw", "flash_sgd", "flash_lion")
#: steps in which a fused update compiles: the first (every rule) and the second (SGD's momentum
#: buffer starts differently on step one, so step two runs another graph)
COMPILE_STEPS = 2
_WHY = "both replace the run's optimizer; use one of them"


def _conflicts(own: str) -> dict[str, str]:
    others = {name: _WHY for name in _OPTIMIZER_SWAPS if name != own}
    others["muon"] = "both replace the run's optimizer (Muon keeps fp32 weights and its own state)"
    others["sam"] = "SAM perturbs and restores the weights in their own dtype, which bf16 weights cannot undo exactly"
    others["lookahead"] = (
        "Lookahead keeps its slow weights in the parameters' dtype (bf16 here) and overwrites "
        "the weights that FlashOptim's corrections refer to"
    )
    return others


class _FlashMethod(Algorithm):
    """Shared INIT surgery, optimizer swap, gradient release and memory reporting."""

    touches = frozenset({"model", "optimizer"})
    data_parallel = False
    data_parallel_note = (
        "bf16 weights and gradient release (an update inside backward, before the all-reduce) are not tested under DDP"
    )
    priority = 80  # INIT: cast after other surgery has added its modules (muon, sam, lookahead are conflicts)
    flash_class: Callable[..., FlashOptimizer]  # a FlashOptimizer subclass, built from (groups, **options)

    def _setup(
        self,
        lr: float | None,
        weight_decay: float | None,
        master_weight_bits: int,
        gradient_release: bool,
        keep_fp32: str,
    ) -> None:
        if lr is not None and lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        if master_weight_bits not in (0, 24, 32):
            raise ValueError(f"master_weight_bits must be 24, 32 or 0 (no correction), got {master_weight_bits}")
        self.lr = lr
        self.weight_decay = weight_decay
        self.master_weight_bits = master_weight_bits
        self.gradient_release = gradient_release
        self.keep_fp32 = keep_fp32
        self._release: GradientRelease | None = None
        self._reported = False
        if gradient_release:  # an instance-level conflict: only release cannot clip the global norm
            self.conflicts = {
                **type(self).conflicts,
                "gradient_clipping": "gradient release steps each parameter "
                "before the global gradient norm is known; drop one of them",
            }

    # ----------------------------------------------------------- hyperparameters
    def _matching_class(self, base: torch.optim.Optimizer) -> Callable[..., FlashOptimizer] | None:
        """The Flash twin of ``base``, or None when ``base`` is of another family."""
        raise NotImplementedError

    def _group_options(self, base_group: dict[str, Any], inherit: bool) -> dict[str, Any]:
        """This method's hyperparameters for one group: the base's when inherited, overridden by ours."""
        raise NotImplementedError

    def build_optimizer(self, model: nn.Module, base: torch.optim.Optimizer) -> FlashOptimizer:
        twin = self._matching_class(base)
        if twin is None and self.lr is None:
            raise ConfigError(
                f"{self.name}: the run's optimizer is {type(base).__name__}, whose hyperparameters do not carry over",
                f"give them, e.g. --method {self.name}:lr=0.001",
            )
        cls = twin or self.flash_class
        groups = [{"params": g["params"], **self._group_options(g, twin is not None)} for g in base.param_groups]
        bits = self.master_weight_bits or None
        return cls(groups, master_weight_bits=bits, compress_state_dict=True)  # compressed: exact resume

    # --------------------------------------------------------------------- events
    def match(self, event: Event, state: State) -> bool:
        if event in (Event.INIT, Event.FIT_START, Event.AFTER_OPTIMIZER_STEP, Event.FIT_END):
            return True
        return event is Event.BEFORE_BACKWARD and self._release is not None

    def apply(self, event: Event, state: State) -> None:
        if event is Event.INIT:
            self._init(state)
        elif event is Event.FIT_START:
            self._warm_up(state)
            if self.gradient_release:
                assert state.optimizer is not None, "FIT_START runs after the optimizer is built"
                self._release = enable_gradient_release(
                    state.model, state.optimizer, grad_accum=state.grad_accum, grad_clip_norm=state.grad_clip_norm
                )
        elif event is Event.BEFORE_BACKWARD:
            self._schedule_now(state)
        elif event is Event.AFTER_OPTIMIZER_STEP and not self._reported:
            self._record_memory(state)
        elif event is Event.FIT_END and self._release is not None:
            self._release.remove()
            self._release = None

    def _init(self, state: State) -> None:
        if self.gradient_release and state.grad_accum > 1:
            raise ConfigError(
                f"{self.name}: gradient release cannot accumulate gradients (grad_accum={state.grad_accum})",
                f"use grad_accum=1 or {self.name}:gradient_release=false",
            )
        if self.gradient_release and state.grad_clip_norm:
            raise ConfigError(
                f"{self.name}: gradient release cannot clip by the global gradient norm "
                f"(the workload clips at {state.grad_clip_norm})",
                f"use {self.name}:gradient_release=false",
            )
        patterns = [p for p in self.keep_fp32.split("|") if p]
        cast_model(state.model, torch.bfloat16, keep_fp32=patterns)
        replace_optimizer(state, self.build_optimizer)  # the baseline is read for its groups and settings only

    def _warm_up(self, state: State) -> None:
        """A fused (compiled) update compiles in its first ``COMPILE_STEPS`` steps (and probes the
        compiler once): charge both to the ``warmup`` bucket, as the ``compile`` method does."""
        optimizer = state.optimizer
        if not isinstance(optimizer, FlashOptimizer):
            return
        with state.timer.bucket("warmup"):
            fused = optimizer.is_fused(state.device)
        if fused:
            state.warmup_steps_remaining = max(state.warmup_steps_remaining, COMPILE_STEPS)

    def _schedule_now(self, state: State) -> None:
        """Under gradient release the step happens inside backward, before the Trainer sets
        this step's learning rate; set it here from the same schedule instead."""
        apply_schedule(state)

    def _record_memory(self, state: State) -> None:
        report = memory_report(state.model, state.optimizer)
        summary = {"optimizer": type(state.optimizer).__name__, **report.to_dict()}
        state.run_info.setdefault("config", {})["memory"] = summary
        state.extra.setdefault(self.name, {})["memory_report"] = report
        self._reported = True


def _optional_bool(value: Any) -> bool | None:
    """A tri-state flag from Python or the CLI (where an unset default arrives as text)."""
    if value is None or isinstance(value, bool):
        return value
    lowered = str(value).lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"nesterov must be true or false, got {value!r}")


def _inherit(base_group: dict[str, Any], key: str, ours: Any, inherit: bool, default: Any) -> Any:
    if ours is not None:
        return ours
    return base_group.get(key, default) if inherit else default


class FlashAdamWMethod(_FlashMethod):
    """AdamW at 7 B/param: bf16 weights + int8 corrections, companded 8-bit moments."""

    name = "flash_adamw"
    conflicts = _conflicts("flash_adamw")
    flash_class = FlashAdamW

    def __init__(
        self,
        lr: float | None = None,
        weight_decay: float | None = None,
        beta1: float | None = None,
        beta2: float | None = None,
        eps: float | None = None,
        master_weight_bits: int = 24,
        gradient_release: bool = False,
        keep_fp32: str = "",
    ) -> None:
        self._setup(lr, weight_decay, master_weight_bits, gradient_release, keep_fp32)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _matching_class(self, base: torch.optim.Optimizer) -> Callable[..., FlashOptimizer] | None:
        if isinstance(base, (torch.optim.AdamW, FlashAdamW)):
            return FlashAdamW
        if isinstance(base, (torch.optim.Adam, FlashAdam)):
            return FlashAdam
        return None

    def _group_options(self, base_group: dict[str, Any], inherit: bool) -> dict[str, Any]:
        b1, b2 = base_group.get("betas", (0.9, 0.999)) if inherit else (0.9, 0.999)
        return {
            "lr": _inherit(base_group, "lr", self.lr, inherit, 1e-3),
            "weight_decay": _inherit(base_group, "weight_decay", self.weight_decay, inherit, 1e-2),
            "betas": (b1 if self.beta1 is None else self.beta1, b2 if self.beta2 is None else self.beta2),
            "eps": _inherit(base_group, "eps", self.eps, inherit, 1e-8),
        }


class FlashSGDMethod(_FlashMethod):
    """SGD with momentum at 6 B/param (4 with gradient release)."""

    name = "flash_sgd"
    conflicts = _conflicts("flash_sgd")
    flash_class = FlashSGD

    def __init__(
        self,
        lr: float | None = None,
        weight_decay: float | None = None,
        momentum: float | None = None,
        nesterov: bool | None = None,
        master_weight_bits: int = 24,
        gradient_release: bool = False,
        keep_fp32: str = "",
    ) -> None:
        self._setup(lr, weight_decay, master_weight_bits, gradient_release, keep_fp32)
        self.momentum, self.nesterov = momentum, _optional_bool(nesterov)

    def _matching_class(self, base: torch.optim.Optimizer) -> Callable[..., FlashOptimizer] | None:
        return FlashSGD if isinstance(base, (torch.optim.SGD, FlashSGD)) else None

    def _group_options(self, base_group: dict[str, Any], inherit: bool) -> dict[str, Any]:
        momentum = _inherit(base_group, "momentum", self.momentum, inherit, 0.9)
        nesterov = _inherit(base_group, "nesterov", self.nesterov, inherit, False)
        return {
            "lr": _inherit(base_group, "lr", self.lr, inherit, 0.1),
            "weight_decay": _inherit(base_group, "weight_decay", self.weight_decay, inherit, 0.0),
            "momentum": momentum,
            "dampening": base_group.get("dampening", 0.0) if inherit and not nesterov else 0.0,
            "nesterov": bool(nesterov) and momentum > 0,
        }


class FlashLionMethod(_FlashMethod):
    """Lion at 6 B/param (4 with gradient release). Lion's lr is 3-10x below AdamW's: give ``lr``."""

    name = "flash_lion"
    conflicts = _conflicts("flash_lion")
    flash_class = FlashLion

    def __init__(
        self,
        lr: float | None = None,
        weight_decay: float | None = None,
        beta1: float | None = None,
        beta2: float | None = None,
        master_weight_bits: int = 24,
        gradient_release: bool = False,
        keep_fp32: str = "",
    ) -> None:
        self._setup(lr, weight_decay, master_weight_bits, gradient_release, keep_fp32)
        self.beta1, self.beta2 = beta1, beta2

    def _matching_class(self, base: torch.optim.Optimizer) -> Callable[..., FlashOptimizer] | None:
        return FlashLion if "lion" in type(base).__name__.lower() else None

    def _group_options(self, base_group: dict[str, Any], inherit: bool) -> dict[str, Any]:
        b1, b2 = base_group.get("betas", (0.9, 0.99)) if inherit else (0.9, 0.99)
        return {
            "lr": _inherit(base_group, "lr", self.lr, inherit, 1e-4),
            "weight_decay": _inherit(base_group, "weight_decay", self.weight_decay, inherit, 0.0),
            "betas": (b1 if self.beta1 is None else self.beta1, b2 if self.beta2 is None else self.beta2),
        }


_PAPER = Paper(
    "Jose Javier Gonzalez Ortiz, Abhay Gupta, Chris Renard, ..., Davis Blalock",
    2026,
    "FlashOptim: Optimizers for Memory Efficient Training",
    "2602.23349",
)
_EXPORT = (
    "parameters are bf16 with the missing bits in the optimizer: "
    "optimizer.get_fp32_model_state_dict(model) gives an ordinary fp32 state dict"
)
_NOT_WORTH = (
    "models whose memory is mostly activations (small CNNs, large batches) save little in total; "
    "on CPU the update runs eagerly (~100 small ops per tensor; the compiled one measured slower) and "
    "its step is many times slower than torch's fused AdamW; on CUDA it is compiled (first two steps "
    "in the warmup bucket), step time not yet measured"
)
_COMMON: dict[str, Any] = dict(
    component="optimization",
    action="restrict",
    mechanism="memory",
    bottleneck=("memory",),
    paper=_PAPER,
    export=_EXPORT,
    not_worth_it=_NOT_WORTH,
    applies_to=("any",),
)

register(
    MethodCard(
        name="flash_adamw",
        summary="AdamW in ~7 bytes/param: bf16 weights + int8 corrections, companded 8-bit moments",
        effect="optimizer-related memory 16 -> 7.1 B/param (5.1 with gradient_release=true), same quality as AdamW",
        functional=(
            "hasten.optim.FlashAdamW",
            "hasten.optim.FlashAdam",
            "hasten.optim.cast_model",
            "hasten.optim.enable_gradient_release",
            "hasten.optim.memory_report",
        ),
        **_COMMON,
    ),
    FlashAdamWMethod,
)
register(
    MethodCard(
        name="flash_sgd",
        summary="SGD with momentum in ~6 bytes/param: bf16 weights + int8 corrections, companded 8-bit momentum",
        effect="optimizer-related memory 12 -> 6.1 B/param (4.1 with gradient_release=true), same quality as SGD",
        functional=("hasten.optim.FlashSGD", "hasten.optim.FlashSGDW", "hasten.optim.cast_model"),
        **_COMMON,
    ),
    FlashSGDMethod,
)
register(
    MethodCard(
        name="flash_lion",
        summary="Lion in ~6 bytes/param: bf16 weights + int8 corrections, companded 8-bit momentum",
        effect="optimizer-related memory 12 -> 6.1 B/param (4.1 with gradient_release=true) versus fp32 Lion",
        functional=("hasten.optim.FlashLion", "hasten.optim.cast_model"),
        **{
            **_COMMON,
            "not_worth_it": _NOT_WORTH + ". Default lr 1e-4 (the Lion paper's advice of 3-10x below "
            "AdamW's 1e-3; lion-pytorch and bitsandbytes use it too), where the FlashOptim authors' FlashLion "
            "defaults to 1e-3: give lr when the run's optimizer is not Lion",
        },
    ),
    FlashLionMethod,
)
