"""Gated linear units in the feed-forward block (Shazeer 2020): ``W2 (act(x W) * (x V))``.

Every plain MLP ``Linear(d, h) -> activation -> [dropout] -> Linear(h, d') -> [dropout]``
becomes the gated form, keeping its activation (ReLU -> ReGLU, GELU -> GEGLU,
SiLU -> SwiGLU) and, by default, no biases (as in the paper and MosaicBERT). The hidden
width is ``hidden_ratio * h`` rounded up to a multiple of ``multiple_of``: the default
2/3 keeps parameters and FLOPs equal to the MLP it replaces (three matrices instead of two).

MLPs are recognised on any model: a module (or ``nn.Sequential``) with two ``Linear``
children ``d -> h -> d'``, an optional activation child and dropouts, and nothing else
with parameters, *and* whose output equals ``fc2(act(fc1(x)))`` on a random input; the
activation is read from the child or, when the forward calls one functionally, found by
that check among GELU, tanh-GELU, ReLU and SiLU. New weights are drawn with the standard
deviation of the weights they replace, so a model's own initialisation scheme carries over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.methods.surgery import Predicate, checked_predicate, replace_modules, require_some

_ACTIVATIONS: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    nn.GELU: F.gelu,
    nn.ReLU: F.relu,
    nn.SiLU: F.silu,
    nn.Tanh: torch.tanh,
    nn.Sigmoid: torch.sigmoid,
}
_FUNCTIONAL_CANDIDATES: tuple[tuple[str, Callable], ...] = (
    ("gelu", F.gelu),
    ("gelu_tanh", partial(F.gelu, approximate="tanh")),
    ("relu", F.relu),
    ("silu", F.silu),
)


def gated_hidden_size(hidden: int, hidden_ratio: float = 2 / 3, multiple_of: int = 8) -> int:
    """``hidden_ratio * hidden`` rounded up to a multiple of ``multiple_of`` (at least one)."""
    if hidden_ratio <= 0 or multiple_of < 1:
        raise ConfigError(
            f"hidden_ratio must be > 0 and multiple_of >= 1, got {hidden_ratio}, {multiple_of}",
            "2/3 keeps the parameter count (Shazeer 2020)",
        )
    return max(multiple_of, math.ceil(hidden * hidden_ratio / multiple_of) * multiple_of)


class GatedMLP(nn.Module):
    """``dropout(W2(act(gate) * value))`` with ``[gate, value] = x W_in``: one fused input matmul."""

    def __init__(
        self,
        in_features: int,
        hidden: int,
        out_features: int,
        activation: Callable[[torch.Tensor], torch.Tensor] = F.gelu,
        bias: bool = False,
        hidden_dropout: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.activation = activation
        self.w_in = nn.Linear(in_features, 2 * hidden, bias=bias)
        self.w_out = nn.Linear(hidden, out_features, bias=bias)
        self.hidden_dropout = nn.Dropout(hidden_dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.w_in(x).chunk(2, dim=-1)
        return self.dropout(self.w_out(self.hidden_dropout(self.activation(gate) * value)))

    def extra_repr(self) -> str:
        name = getattr(self.activation, "__name__", None) or getattr(
            getattr(self.activation, "func", None), "__name__", "activation"
        )
        return f"hidden={self.hidden}, activation={name}"


@dataclass
class MLPParts:
    fc1: nn.Linear
    fc2: nn.Linear
    activation: Callable[[torch.Tensor], torch.Tensor]
    hidden_dropout: float
    dropout: float


def recognise_mlp(module: nn.Module) -> MLPParts | None:
    """The parts of ``module`` if it is a plain MLP (see the module docstring), else None."""
    children = list(module.named_children())
    linears = [(i, c) for i, (_, c) in enumerate(children) if isinstance(c, nn.Linear)]
    if len(linears) != 2 or not children:
        return None
    (i1, fc1), (i2, fc2) = linears
    if fc1.out_features != fc2.in_features or list(module.parameters(recurse=False)):
        return None
    activation_children = [(i, c) for i, (_, c) in enumerate(children) if type(c) in _ACTIVATIONS]
    others = [c for _, c in children if not isinstance(c, (nn.Linear, nn.Dropout)) and type(c) not in _ACTIVATIONS]
    if others or len(activation_children) > 1:
        return None
    dropouts = [(i, c) for i, (_, c) in enumerate(children) if isinstance(c, nn.Dropout)]
    hidden_p = max((c.p for i, c in dropouts if i1 < i < i2), default=0.0)
    out_p = max((c.p for i, c in dropouts if i > i2), default=0.0)
    if activation_children:
        act_module = activation_children[0][1]
        candidates = [(type(act_module).__name__, act_module)]
    else:
        candidates = list(_FUNCTIONAL_CANDIDATES)  # type: ignore[arg-type]  # functions stand in for modules
    generator = torch.Generator().manual_seed(0)
    reference = fc1.weight
    x = torch.randn(2, 3, fc1.in_features, generator=generator).to(reference.device, reference.dtype)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            try:
                actual = module(x)
            except Exception:  # not callable with one tensor: not a plain MLP
                return None
            for _, act in candidates:
                expected = fc2(act(fc1(x)))
                if (
                    isinstance(actual, torch.Tensor)
                    and actual.shape == expected.shape
                    and torch.allclose(actual, expected, rtol=1e-5, atol=1e-6)
                ):
                    fn = act if not isinstance(act, nn.Module) else _activation_function(act)
                    return MLPParts(fc1, fc2, fn, hidden_p, out_p)
    finally:
        module.train(was_training)
    return None


def _activation_function(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    if isinstance(module, nn.GELU) and module.approximate != "none":
        return partial(F.gelu, approximate=module.approximate)
    return _ACTIVATIONS[type(module)]


def _gated_from(parts: MLPParts, hidden_ratio: float, multiple_of: int, bias: bool) -> GatedMLP:
    hidden = gated_hidden_size(parts.fc1.out_features, hidden_ratio, multiple_of)
    gated = GatedMLP(
        parts.fc1.in_features,
        hidden,
        parts.fc2.out_features,
        parts.activation,
        bias,
        parts.hidden_dropout,
        parts.dropout,
    )
    with torch.no_grad():  # keep the model's own initialisation scale
        gated.w_in.weight.normal_(0.0, float(parts.fc1.weight.std()))
        gated.w_out.weight.normal_(0.0, float(parts.fc2.weight.std()))
        for layer in (gated.w_in, gated.w_out):
            if layer.bias is not None:
                layer.bias.zero_()
    return gated


def apply_gated_linear_units(
    model: nn.Module,
    hidden_ratio: float = 2 / 3,
    multiple_of: int = 8,
    bias: bool = False,
    predicate: Predicate | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> int:
    """Replace every plain MLP (or those ``predicate`` accepts) with a ``GatedMLP``; returns how many."""
    gated_hidden_size(1, hidden_ratio, multiple_of)  # validate before the model is touched
    found: dict[int, MLPParts] = {}

    def wanted(name: str, module: nn.Module) -> bool:
        if isinstance(module, GatedMLP) or (predicate is not None and not predicate(name, module)):
            return False
        parts = recognise_mlp(module)
        if parts is not None:
            found[id(module)] = parts
        return parts is not None

    return replace_modules(
        model, wanted, lambda name, module: _gated_from(found[id(module)], hidden_ratio, multiple_of, bias), optimizer
    )


class GatedLinearUnits(Algorithm):
    """Swap the MLPs at INIT (see ``apply_gated_linear_units``)."""

    name = "gated_linear_units"
    touches = frozenset({"model"})
    data_parallel = True
    api_only = frozenset({"predicate"})  # a Python callable or class, not a CLI value
    priority = 20

    def __init__(
        self,
        hidden_ratio: float = 2 / 3,
        multiple_of: int = 8,
        bias: bool = False,
        *,
        predicate: Predicate | None = None,
    ) -> None:
        if hidden_ratio <= 0 or multiple_of < 1:
            raise ValueError(f"hidden_ratio must be > 0 and multiple_of >= 1, got {hidden_ratio}, {multiple_of}")
        self.hidden_ratio = hidden_ratio
        self.multiple_of = multiple_of
        self.bias = bias
        self._predicate = checked_predicate(predicate)

    def match(self, event: Event, state: State) -> bool:
        return event is Event.INIT

    def apply(self, event: Event, state: State) -> None:
        count = apply_gated_linear_units(
            state.model, self.hidden_ratio, self.multiple_of, self.bias, self._predicate, state.optimizer
        )
        require_some(
            count,
            self.name,
            "plain MLP (Linear -> activation -> Linear)",
            "gated_linear_units replaces transformer-style MLPs; drop it for this model",
        )


CARD = MethodCard(
    name="gated_linear_units",
    summary="Replace each MLP with a gated one, act(xW) * xV then W2, at equal parameters (GEGLU/SwiGLU).",
    component="model",
    action="replace",
    mechanism="step-count",
    bottleneck=("compute",),
    paper=Paper("Noam Shazeer", 2020, "GLU Variants Improve Transformer", "2002.05202"),
    export="cannot be removed: the gated MLP is a different function. It uses only Linear layers and exports as it is.",
    not_worth_it="models without transformer-style MLPs (refused); very short runs, where the gain in loss per "
    "step (Shazeer: better perplexity at equal compute) has no time to show.",
    effect="lower loss per step at the same parameters and FLOPs per step",
    applies_to=("text", "any"),
    needs=("mlp",),
    functional=("apply_gated_linear_units", "recognise_mlp", "GatedMLP"),
)

register(CARD, GatedLinearUnits)
