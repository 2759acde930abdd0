"""Cast a model's parameters to bf16 so that weights and gradients take 2 bytes each.

FlashOptim keeps no fp32 copy of the model: the module's parameters *are* 16-bit, autograd
produces 16-bit gradients, and the optimizer carries the missing precision in a small
correction (see ``weight_split``). Layers whose statistics need fp32 (batch norm's running
mean and variance accumulate tiny updates) stay fp32; hooks upcast their inputs and cast
their outputs back, so the layers around them never see a dtype mismatch.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from hasten.errors import ConfigError
from hasten.optim.flash.cpu_matmuls import use_fp32_matrix_products_on_cpu

_CAST_MARK = "_hasten_cast_dtype"


def _has_running_stats(module: nn.Module) -> bool:
    return isinstance(module, _NormBase) and module.track_running_stats


def _map_floats(value: Any, dtype: torch.dtype) -> Any:
    """Cast every floating tensor inside nested tuples/lists/dicts; leave the rest alone."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value
    if isinstance(value, tuple):
        return tuple(_map_floats(v, dtype) for v in value)
    if isinstance(value, list):
        return [_map_floats(v, dtype) for v in value]
    if isinstance(value, dict):
        return {k: _map_floats(v, dtype) for k, v in value.items()}
    return value


def _first_float_dtype(value: Any) -> torch.dtype | None:
    if isinstance(value, torch.Tensor):
        return value.dtype if value.is_floating_point() else None
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_float_dtype(item)
            if found is not None:
                return found
    return None


class _KeepFp32:
    """Hooks for a layer left in fp32: inputs go up to fp32, outputs return to the caller's dtype."""

    def __init__(self) -> None:
        self.caller_dtype: torch.dtype | None = None

    def before(self, module: nn.Module, args: tuple) -> tuple:
        self.caller_dtype = _first_float_dtype(args)
        return _map_floats(args, torch.float32)

    def after(self, module: nn.Module, args: tuple, output: Any) -> Any:
        if self.caller_dtype is None or self.caller_dtype == torch.float32:
            return output
        return _map_floats(output, self.caller_dtype)


def cast_model(
    model: nn.Module,
    dtype: torch.dtype = torch.bfloat16,
    keep_fp32: Sequence[str] = (),
    *,
    cast_inputs: bool = True,
    fp32_outputs: bool = True,
    cpu_fp32_matmuls: bool = True,
) -> nn.Module:
    """Cast ``model``'s floating parameters and buffers to ``dtype`` in place; returns it.

    - Normalization layers with running statistics stay fp32, as do modules whose dotted
      name matches one of the ``keep_fp32`` patterns (``fnmatch``, e.g. ``"head"``,
      ``"blocks.*.norm"``). Their inputs are upcast and their outputs cast back.
    - ``cast_inputs``: floating inputs to the whole model are cast to ``dtype`` (fp32
      images work unchanged; integer token ids are left alone).
    - ``fp32_outputs``: floating outputs of the whole model come back as fp32, so losses
      and metrics are computed in full precision.
    - ``cpu_fp32_matmuls``: while the model is on a CPU, matrix products, convolutions and
      attention compute in fp32 on upcast operands (see ``cpu_matmuls``); storage stays 16-bit.
      Turn it off on CPUs with bf16 matrix units (AMX). No effect on GPUs.

    Calling it again with the same ``dtype`` changes nothing.
    """
    if dtype not in (torch.bfloat16, torch.float16):
        raise ConfigError(f"cast_model casts to bfloat16 or float16, not {dtype}", "use dtype=torch.bfloat16")
    previous = getattr(model, _CAST_MARK, None)
    if previous is not None:
        if previous != dtype:
            raise ConfigError(f"model was already cast to {previous}", f"build a fresh model to cast it to {dtype}")
        return model
    kept = [
        module
        for name, module in model.named_modules()
        if _has_running_stats(module) or any(fnmatch.fnmatchcase(name, p) for p in keep_fp32)
    ]
    model.to(dtype)
    for module in kept:
        module.float()
        hooks = _KeepFp32()
        module.register_forward_pre_hook(hooks.before)
        module.register_forward_hook(hooks.after)
    if cast_inputs:
        model.register_forward_pre_hook(lambda _module, args: _map_floats(args, dtype))
    if fp32_outputs:
        model.register_forward_hook(lambda _module, _args, output: _map_floats(output, torch.float32))
    if cpu_fp32_matmuls:
        use_fp32_matrix_products_on_cpu(model)
    setattr(model, _CAST_MARK, dtype)
    return model


def model_dtype(model: nn.Module) -> torch.dtype | None:
    """The dtype ``cast_model`` gave ``model``, or None if it was not cast."""
    return getattr(model, _CAST_MARK, None)
