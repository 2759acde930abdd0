"""gradient_clipping: bound the gradient by its total norm, by value, or unit-wise (AGC).

- ``norm``: scale all gradients together so their joint L2 norm is at most the threshold
  (Pascanu et al. 2013);
- ``value``: clamp every gradient element to [-threshold, threshold];
- ``adaptive`` (AGC, Brock et al. 2021, arXiv 2102.06171): for each output unit (a row of a
  linear weight, a filter of a conv), scale its gradient down when ||g|| / max(||w||, eps)
  exceeds the threshold; the final linear layer is left unclipped, as in the paper.

The method clips inside ``optimizer.step``, just before the innermost optimizer updates the
weights (a step pre-hook registered at FIT_START), so it bounds the gradient that is actually
applied: under ``sam`` that is the gradient at the perturbed point, not the first one.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.optim.muon import output_head
from hasten.optim.wrapper import innermost

__all__ = [
    "CLIPPING_TYPES",
    "GradientClipping",
    "adaptive_clip_grad_",
    "agc_parameters",
    "clip_gradients",
    "unitwise_norm",
]

CLIPPING_TYPES = ("norm", "value", "adaptive")
DEFAULT_THRESHOLDS = {"norm": 1.0, "value": 1.0, "adaptive": 0.01}


def unitwise_norm(x: torch.Tensor) -> torch.Tensor:
    """L2 norm per output unit (over all dims but the first), or of the whole tensor if 0/1-D;
    shaped to broadcast against ``x``."""
    if x.ndim <= 1:
        return torch.linalg.vector_norm(x)
    return torch.linalg.vector_norm(x, dim=tuple(range(1, x.ndim)), keepdim=True)


@torch.no_grad()
def adaptive_clip_grad_(parameters: Iterable[torch.Tensor], clipping: float = 0.01, eps: float = 1e-3) -> None:
    """AGC in place: where ||g_unit|| > clipping * max(||w_unit||, eps), rescale g_unit to that bound."""
    for param in parameters:
        if param.grad is None:
            continue
        max_norm = unitwise_norm(param.detach()).clamp(min=eps) * clipping
        grad_norm = unitwise_norm(param.grad)
        scale = (max_norm / grad_norm.clamp(min=1e-6)).clamp(max=1.0)
        param.grad.mul_(scale)


def clip_gradients(
    parameters: Iterable[torch.Tensor], clipping_type: str = "norm", clipping_threshold: float | None = None
) -> None:
    """Clip ``parameters``' gradients in place; a threshold of None takes the type's default
    (1.0 for norm and value, 0.01 for adaptive)."""
    if clipping_type not in CLIPPING_TYPES:
        raise ValueError(f"clipping_type must be one of {', '.join(CLIPPING_TYPES)}, got {clipping_type!r}")
    threshold = DEFAULT_THRESHOLDS[clipping_type] if clipping_threshold is None else clipping_threshold
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return
    if clipping_type == "norm":
        torch.nn.utils.clip_grad_norm_(params, threshold)
    elif clipping_type == "value":
        torch.nn.utils.clip_grad_value_(params, threshold)
    else:
        adaptive_clip_grad_(params, threshold)


def agc_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters AGC clips: all but the final linear layer's (Brock et al.)."""
    head = output_head(model)
    skip = {id(p) for p in head.parameters()} if head is not None else set()
    return [p for p in model.parameters() if id(p) not in skip]


class GradientClipping(Algorithm):
    """Clip gradients right before every weight update."""

    name = "gradient_clipping"
    touches = frozenset({"optimizer"})
    data_parallel = True

    def __init__(self, clipping_type: str = "norm", clipping_threshold: float | None = None) -> None:
        if clipping_type not in CLIPPING_TYPES:
            raise ValueError(f"clipping_type must be one of {', '.join(CLIPPING_TYPES)}, got {clipping_type!r}")
        if clipping_threshold is not None and clipping_threshold <= 0:
            raise ValueError(f"clipping_threshold must be > 0, got {clipping_threshold}")
        self.clipping_type, self.clipping_threshold = clipping_type, clipping_threshold
        self._handle: Any = None

    def match(self, event: Event, state: State) -> bool:
        return event in (Event.FIT_START, Event.FIT_END)

    def apply(self, event: Event, state: State) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if event is Event.FIT_START:
            model = state.model
            params = agc_parameters(model) if self.clipping_type == "adaptive" else list(model.parameters())
            self._handle = innermost(state.optimizer).register_step_pre_hook(  # type: ignore[arg-type]  # built
                lambda optimizer, args, kwargs: clip_gradients(params, self.clipping_type, self.clipping_threshold)
            )


register(
    MethodCard(
        name="gradient_clipping",
        summary="Bound gradients before each update: total norm, per element, or unit-wise relative to the "
        "weights (adaptive, AGC)",
        component="optimization",
        action="restrict",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper(
            "Pascanu, Mikolov, Bengio", 2013, "On the difficulty of training recurrent neural networks", "1211.5063"
        ),
        functional=("clip_gradients", "adaptive_clip_grad_", "agc_parameters"),
        effect="Fewer diverged or spiking runs, which lets larger learning rates and batches train; AGC "
        "(Brock et al. 2021, arXiv 2102.06171) made normalizer-free ResNets trainable at large batch",
        not_worth_it="Stable runs whose gradients never reach the threshold (it then only adds a norm "
        "computation per step); a threshold set so low that every step is shrunk acts as a lower "
        "learning rate; adaptive mode with a threshold tuned for a different batch size",
        export="unchanged",
    ),
    GradientClipping,
)
