"""Gradient release: step each parameter the moment its gradient is complete, then free it.

Normally every gradient lives until ``optimizer.step()``: 2 bytes per parameter for a bf16
model. Stepping inside the backward pass (a ``register_post_accumulate_grad_hook`` per
parameter) means at most a few gradients exist at once, so FlashAdamW drops from 7 to
5 bytes per parameter. The same trick rules out anything that needs all gradients at
once (FlashOptim, Gonzalez Ortiz et al. 2026, section 4):

- gradient accumulation (each micro-batch would step on a partial gradient);
- global gradient-norm clipping (the norm is only known after the last gradient);
- DDP (its reducer writes gradients back after the hooks ran, so memory is not freed
  and averaged gradients arrive too late);
- torch optimizers (only ``FlashOptimizer`` can step one tensor at a time).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hasten.errors import ConfigError
from hasten.optim.flash.base import FlashOptimizer


class GradientRelease:
    """Handle returned by ``enable_gradient_release``; ``remove()`` restores normal stepping."""

    def __init__(self, optimizer: FlashOptimizer, handles: list[Any]) -> None:
        self.optimizer = optimizer
        self._handles = handles

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.optimizer.gradient_release_active = False


def _is_distributed_wrapper(model: nn.Module) -> bool:
    parallel = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    return isinstance(model, parallel) or any(isinstance(m, parallel) for m in model.modules())


def enable_gradient_release(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    grad_accum: int = 1,
    grad_clip_norm: float | None = None,
) -> GradientRelease:
    """Make ``optimizer`` step each of ``model``'s parameters during the backward pass.

    While active, ``optimizer.step()`` and ``zero_grad()`` do nothing, so an ordinary loop
    runs unchanged. Pass your loop's ``grad_accum`` and ``grad_clip_norm`` so that settings
    release cannot honour are refused here rather than silently ignored.
    """
    if not isinstance(optimizer, FlashOptimizer):
        raise ConfigError(
            f"gradient release needs a FlashOptimizer, got {type(optimizer).__name__}",
            "use FlashAdamW, FlashAdam, FlashSGD, FlashSGDW or FlashLion",
        )
    if optimizer.gradient_release_active:
        raise ConfigError("gradient release is already enabled for this optimizer", "call remove() on its handle first")
    if _is_distributed_wrapper(model):
        raise ConfigError(
            "gradient release cannot run under DistributedDataParallel/DataParallel: the reducer "
            "delivers averaged gradients after the release hooks have stepped",
            "train on one device, or drop gradient release",
        )
    if grad_accum > 1:
        raise ConfigError(
            f"gradient release cannot accumulate gradients (grad_accum={grad_accum}): each micro-batch "
            "would step on a partial gradient",
            "use grad_accum=1, or drop gradient release",
        )
    if grad_clip_norm:
        raise ConfigError(
            f"gradient release cannot clip by the global gradient norm (grad_clip_norm={grad_clip_norm}):"
            " parameters are stepped before the norm is known",
            "drop clipping, or drop gradient release",
        )
    groups = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    handles = []
    for param in {id(p): p for p in model.parameters() if p.requires_grad}.values():
        group = groups.get(id(param))
        if group is None:
            continue  # frozen by the user or owned by another optimizer

        def release(tensor: torch.Tensor, group: dict = group) -> None:
            optimizer.step_param(tensor, group)
            tensor.grad = None

        handles.append(param.register_post_accumulate_grad_hook(release))
    if not handles:
        raise ConfigError(
            "none of the model's parameters belong to this optimizer", "build the optimizer from model.parameters()"
        )
    optimizer.gradient_release_active = True
    return GradientRelease(optimizer, handles)
