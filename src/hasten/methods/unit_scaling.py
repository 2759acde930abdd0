"""unit_scaling: μnit Scaling (Narayan et al. 2025): a unit-scaled GPT, optionally in FP8 with static scales.

At INIT the character GPT (``hasten.models.gpt.CharGPT``) is rebuilt, same shapes, as
``hasten.models.unit_gpt.UnitGPT``: N(0, 1) weights, static multipliers, Res-Post-LayerNorm
and the fixed residual rule (tau by depth unless given). The optimizer becomes AdamW over the
transfer-rule groups of ``hasten.optim.unit_transfer`` (hidden lr scaled by sqrt(base_width/width),
the rest unchanged, decoupled weight decay); the baseline's betas carry over.

``fp8=true`` runs the hidden linears in FP8 (e4m3 weights and activations, e5m2 gradients, clipped,
no dynamic scaling; embeddings and head in fp32). ``grad_scale`` is a static factor on output
gradients before their e5m2 cast (divided out after): with a mean-reduced loss most gradients of
this small model fall below e5m2's smallest subnormal at 1 (see ``track_fp8_numerics``). ``fp8_backend=auto`` uses FP8 tensor cores where
the device has them and otherwise emulates them (FP8 numerics at fp32 speed); the run's record says
which. ``unit=false,fp8=true`` keeps the model's own standard parametrization and only swaps its
hidden linears for FP8 ones, the comparison μS is measured against.
"""

from __future__ import annotations

from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.models.gpt import CharGPT
from hasten.models.unit_gpt import UnitGPT, check_tau
from hasten.numerics.fp8 import (
    BACKENDS,
    apply_fp8_linears,
    describe_backend,
    resolve_backend,
)
from hasten.optim.unit_transfer import check_base_width, unit_adamw

__all__ = ["UnitScaling", "unit_scale_gpt"]


def unit_scale_gpt(
    model: CharGPT, tau: float | None = None, fp8_backend: str | None = None, fp8_grad_scale: float = 1.0
) -> UnitGPT:
    """A freshly initialised ``UnitGPT`` with ``model``'s shapes (weights are redrawn, not converted)."""
    if not isinstance(model, CharGPT):
        raise ConfigError(
            f"unit_scaling rebuilds the character GPT, not a {type(model).__name__}",
            "use unit=false,fp8=true for FP8 linears on other models, or build a "
            "hasten.models.unit_gpt.UnitGPT yourself",
        )
    return UnitGPT(model.config, tau=tau, fp8_backend=fp8_backend, fp8_grad_scale=fp8_grad_scale)


def _betas(optimizer: object) -> tuple[float, float]:
    groups = getattr(optimizer, "param_groups", None) or [{}]
    betas = groups[0].get("betas", (0.9, 0.99))
    return (float(betas[0]), float(betas[1]))


class UnitScaling(Algorithm):
    """Swap in the unit-scaled GPT (and/or FP8 linears) and the transfer-rule optimizer at INIT."""

    name = "unit_scaling"
    touches = frozenset({"model", "optimizer"})
    data_parallel = True
    priority = 10  # rebuild the model before other surgery sees it

    def __init__(
        self,
        unit: bool = True,
        fp8: bool = False,
        fp8_backend: str = "auto",
        tau: float | None = None,
        lr: float = 0.1,
        weight_decay: float = 1e-4,
        base_width: int | None = None,
        grad_scale: float = 1.0,
    ) -> None:
        if not unit and not fp8:
            raise ConfigError(
                "unit_scaling with unit=false and fp8=false changes nothing",
                "set unit=true (μS model), fp8=true, or both",
            )
        if fp8_backend not in BACKENDS:
            raise ConfigError(f"unknown FP8 backend {fp8_backend!r}", f"use one of {', '.join(BACKENDS)}")
        if tau is not None:
            check_tau(tau)
        if lr <= 0 or weight_decay < 0:
            raise ConfigError(f"unit_scaling needs lr > 0 and weight_decay >= 0, got {lr}, {weight_decay}")
        if grad_scale <= 0:
            raise ConfigError(f"grad_scale must be > 0, got {grad_scale}", "a power of two such as 16384")
        if base_width is not None and base_width < 1:
            raise ConfigError(f"base_width must be >= 1, got {base_width}")
        if not unit and (tau is not None or base_width is not None):
            raise ConfigError("tau and base_width apply to the unit-scaled model only", "drop them or set unit=true")
        self.unit, self.fp8, self.fp8_backend, self.tau = unit, fp8, fp8_backend, tau
        self.lr, self.weight_decay, self.base_width, self.grad_scale = lr, weight_decay, base_width, grad_scale

    def match(self, event: Event, state: State) -> bool:
        return event is Event.INIT

    def apply(self, event: Event, state: State) -> None:
        backend = resolve_backend(self.fp8_backend, state.device) if self.fp8 else None
        config = state.run_info.setdefault("config", {})
        config["fp8"] = describe_backend(backend) if backend else "off"
        if not self.unit:
            assert backend is not None
            swapped = apply_fp8_linears(state.model, backend, self.grad_scale)
            if not swapped:
                raise ConfigError(
                    f"{type(state.model).__name__} has no bias-free hidden nn.Linear to run in FP8",
                    "FP8 linears replace hidden bias-free linears; drop fp8 for this model",
                )
            config["fp8_layers"] = swapped
            return
        model = state.model
        if isinstance(model, CharGPT):
            check_base_width(self.base_width or model.config.width, model.config.width)
        unit_model = unit_scale_gpt(model, self.tau, backend, self.grad_scale).to(state.device)  # type: ignore[arg-type]
        config["unit_scaling"] = {
            "tau": unit_model.tau,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "grad_scale": self.grad_scale,
            "base_width": self.base_width or unit_model.config.width,
        }
        given, factory = state.optimizer, state.optimizer_factory
        state.model = unit_model
        state.optimizer = None
        lr, weight_decay, base_width = self.lr, self.weight_decay, self.base_width

        def build(model: nn.Module) -> object:
            baseline = given if given is not None else factory(model) if factory is not None else None
            betas = _betas(baseline) if baseline is not None else (0.9, 0.99)  # read for its betas only
            return unit_adamw(model, lr, weight_decay, base_width, betas)  # type: ignore[arg-type]

        state.optimizer_factory = build  # type: ignore[assignment]


register(
    MethodCard(
        name="unit_scaling",
        summary="μnit Scaling: a unit-variance GPT (static multipliers, Res-Post-LN) whose lr transfers across "
        "widths; fp8=true runs hidden linears in FP8, static scales",
        component="model",
        action="replace",
        mechanism="both",
        bottleneck=("compute",),
        paper=Paper(
            "Narayan, Gupta, Paul, Blalock", 2025, "μnit Scaling: Simple and Scalable FP8 LLM Training", "2502.05967"
        ),
        functional=(
            "hasten.models.unit_gpt.UnitGPT",
            "hasten.models.unit_gpt.fixed_residual",
            "hasten.models.unit_gpt.tau_for_depth",
            "hasten.optim.unit_transfer.unit_param_groups",
            "hasten.numerics.fp8.fp8_linear",
            "hasten.numerics.fp8.apply_fp8_linears",
            "hasten.numerics.fp8_stats.track_fp8_numerics",
            "unit_scale_gpt",
        ),
        effect="Cheaper steps on FP8 tensor cores (the paper: 25-33% higher throughput than bf16 at 1B-13B on "
        "H100s) and far cheaper tuning: lr and weight decay tuned at a small width carry to large ones. "
        "On CPU FP8 is only emulated: same numerics, slower steps",
        not_worth_it="Hardware without FP8 tensor cores (emulation costs time, it only checks numerics); models "
        "other than the character GPT for unit=true (refused: the interventions need the model's "
        "structure); runs that start from trained SP weights (the model is re-initialised); its lr "
        "(0.1 for AdamW on unit-scale weights) is its own, not the baseline's",
        export="a different parametrization: export the UnitGPT as it is (FP8Linear layers with backend=None run "
        "in fp32 with the same multipliers)",
        applies_to=("text",),
    ),
    UnitScaling,
)
