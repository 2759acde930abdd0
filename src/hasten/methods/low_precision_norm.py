"""Low-precision norms: run LayerNorm / GroupNorm / RMSNorm in bf16 under autocast.

Autocast runs normalization in fp32 on CUDA (and with fp32 weights on CPU), so every norm
reads and writes activations at twice the bytes of the surrounding bf16 matmuls. Norms are
memory-bound, so running them entirely in the autocast dtype (input, weight and bias cast
down, autocast switched off inside) cuts their traffic roughly in half. Outside autocast
nothing changes.

Surgery swaps each norm's class for a low-precision subclass: parameters, buffers and
state-dict keys stay the same, and ``remove_low_precision_norm`` swaps the classes back.
Norms are found by type (``nn.LayerNorm``, ``nn.GroupNorm``, ``nn.RMSNorm``) and, so that
hand-written norms such as nanoGPT's ``LayerNorm`` are covered, by class name
(``...LayerNorm``, ``...GroupNorm``, ``...RMSNorm``); ``predicate`` overrides both. Batch
norm is left alone: autocast already feeds it low-precision activations on GPUs.
"""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.methods.surgery import Predicate, checked_predicate, require_some

_NORM_NAME = re.compile(r"(LayerNorm|GroupNorm|RMSNorm)$")


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The active autocast dtype for ``device_type``, or None when autocast is off."""
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


def _cast(tensor: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    return tensor.to(dtype) if tensor is not None else None


class _LowPrecisionMixin:
    """Forward in the autocast dtype with autocast off; the plain forward otherwise."""

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        dtype = autocast_dtype(x.device.type)
        if dtype is None:
            return super().forward(x, *args, **kwargs)  # type: ignore[misc]
        with torch.autocast(x.device.type, enabled=False):
            return self._low_precision_forward(x.to(dtype), dtype, *args, **kwargs)

    def _low_precision_forward(self, x: torch.Tensor, dtype: torch.dtype, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Any norm: run its own forward with its parameters temporarily cast down."""
        originals = dict(self._parameters)  # type: ignore[attr-defined]
        try:
            for name, param in originals.items():
                if param is not None and param.is_floating_point():
                    self._parameters[name] = param.to(dtype)  # type: ignore[attr-defined,assignment]
            return super().forward(x, *args, **kwargs)  # type: ignore[misc]
        finally:
            self._parameters.update(originals)  # type: ignore[attr-defined]


class LowPrecisionLayerNorm(_LowPrecisionMixin, nn.LayerNorm):  # type: ignore[misc]  # forward(x, *args) fits both
    def _low_precision_forward(self, x: torch.Tensor, dtype: torch.dtype, *args: Any, **kwargs: Any) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, _cast(self.weight, dtype), _cast(self.bias, dtype), self.eps)


class LowPrecisionGroupNorm(_LowPrecisionMixin, nn.GroupNorm):  # type: ignore[misc]  # forward(x, *args) fits both
    def _low_precision_forward(self, x: torch.Tensor, dtype: torch.dtype, *args: Any, **kwargs: Any) -> torch.Tensor:
        return F.group_norm(x, self.num_groups, _cast(self.weight, dtype), _cast(self.bias, dtype), self.eps)


class LowPrecisionRMSNorm(_LowPrecisionMixin, nn.RMSNorm):
    def _low_precision_forward(self, x: torch.Tensor, dtype: torch.dtype, *args: Any, **kwargs: Any) -> torch.Tensor:
        return F.rms_norm(x, self.normalized_shape, _cast(self.weight, dtype), self.eps)


_EXACT = {nn.LayerNorm: LowPrecisionLayerNorm, nn.GroupNorm: LowPrecisionGroupNorm, nn.RMSNorm: LowPrecisionRMSNorm}
_MADE: dict[type, type] = {}


def _low_precision_class(cls: type) -> type:
    """The low-precision twin of ``cls``: a named class for torch's norms, a generated
    subclass (generic path) for any other norm class."""
    if cls in _EXACT:
        return _EXACT[cls]
    if cls not in _MADE:
        _MADE[cls] = type(f"LowPrecision{cls.__name__}", (_LowPrecisionMixin, cls), {"_hasten_original": cls})
    return _MADE[cls]


def is_low_precision(module: nn.Module) -> bool:
    return isinstance(module, _LowPrecisionMixin)


def is_norm(name: str, module: nn.Module) -> bool:
    """LayerNorm, GroupNorm and RMSNorm by type, or any module whose class name ends so."""
    return isinstance(module, tuple(_EXACT)) or bool(_NORM_NAME.search(type(module).__name__))


def apply_low_precision_norm(model: nn.Module, predicate: Predicate | None = None) -> int:
    """Make every norm (``is_norm``, or those ``predicate`` picks) run in the autocast dtype;
    returns how many. Parameters and state-dict keys are unchanged."""
    chosen = predicate or is_norm
    count = 0
    for name, module in model.named_modules():
        if name and not is_low_precision(module) and chosen(name, module):
            module.__class__ = _low_precision_class(type(module))
            count += 1
    return count


def remove_low_precision_norm(model: nn.Module) -> int:
    """Swap the original norm classes back (exact); returns how many."""
    originals = {v: k for k, v in _EXACT.items()}
    count = 0
    for module in model.modules():
        if is_low_precision(module):
            cls = type(module)
            module.__class__ = originals.get(cls) or cls._hasten_original  # type: ignore[attr-defined]
            count += 1
    return count


class LowPrecisionNorm(Algorithm):
    """Swap the norms at INIT; refuse at FIT_START if the run has no bf16 autocast, where the
    method would silently do nothing."""

    name = "low_precision_norm"
    touches = frozenset({"model"})
    data_parallel = True
    api_only = frozenset({"predicate"})  # a Python callable or class, not a CLI value
    priority = 70

    def __init__(self, *, predicate: Predicate | None = None) -> None:
        self._predicate = checked_predicate(predicate)

    def match(self, event: Event, state: State) -> bool:
        return event in (Event.INIT, Event.FIT_START)

    def apply(self, event: Event, state: State) -> None:
        if event is Event.INIT:
            require_some(
                apply_low_precision_norm(state.model, self._predicate),
                self.name,
                "LayerNorm, GroupNorm or RMSNorm",
                "drop low_precision_norm for this model",
            )
        elif state.precision != "bf16":
            raise ConfigError(
                f"low_precision_norm does nothing at precision {state.precision!r}",
                "train with bf16 autocast (--precision bf16 or the precision method), or drop it",
            )


CARD = MethodCard(
    name="low_precision_norm",
    summary="Run LayerNorm/GroupNorm/RMSNorm in bf16 under autocast instead of fp32.",
    component="model",
    action="restrict",
    mechanism="step-cost",
    bottleneck=("memory",),
    paper=Paper(
        "Jacob Portes, Alex Trott, Sam Havens, Daniel King, Abhinav Venigalla, Moin Nadeem, Nikhil Sardana, "
        "Daya Khudia, Jonathan Frankle",
        2023,
        "MosaicBERT: A Bidirectional Encoder Optimized for Fast Pretraining",
        "2312.17482",
    ),
    export="exact: remove_low_precision_norm(model) swaps the original classes back (parameters never changed)",
    not_worth_it="fp32 runs (refused: nothing to do); models with few or tiny norms; runs that show loss "
    "spikes in bf16 (peers report occasional instability). Batch norm is not covered.",
    effect="about half the memory traffic of each norm under bf16 autocast; norms are memory-bound, so they "
    "run faster; same number of steps",
    applies_to=("any",),
    needs=("norm",),
    implementation_level=True,
    functional=("apply_low_precision_norm", "remove_low_precision_norm"),
)

register(CARD, LowPrecisionNorm)
