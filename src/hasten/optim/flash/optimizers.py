"""FlashOptim's five optimizers: drop-in for torch's, at 5 to 7 bytes per parameter.

Use with a model cast by ``cast_model`` (bf16 parameters)::

    model = cast_model(MyNet())
    opt = FlashAdamW(model.parameters(), lr=1e-3, weight_decay=0.1)

The update rules are the torch ones (``torch.optim.SGD``, ``AdamW`` ...) applied in fp32 to
the reconstructed master weight and dequantized states; only the storage differs
(FlashOptim, Gonzalez Ortiz et al. 2026, Alg. 4). Each rule is a plain function of flat fp32
tensors and Python scalars, so ``torch.compile`` can fuse it with the (de)quantization around it.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from hasten.errors import ConfigError
from hasten.optim.flash.base import FlashOptimizer
from hasten.optim.flash.fused import SIGNED, UNSIGNED


def _check_betas(betas: tuple[float, float]) -> None:
    for beta in betas:
        if not 0.0 <= beta < 1.0:
            raise ConfigError(f"betas must lie in [0, 1), got {tuple(betas)}", "e.g. betas=(0.9, 0.999)")


# ------------------------------------------------------------------------------ rules
def sgd_rule(
    theta: torch.Tensor, grad: torch.Tensor, states: dict[str, torch.Tensor], hyper: Mapping[str, Any]
) -> None:
    """``torch.optim.SGD``'s update (decoupled decay when ``hyper["decoupled"]``)."""
    lr, wd, momentum = hyper["lr"], hyper["weight_decay"], hyper["momentum"]
    direction = grad
    if wd != 0:
        if hyper["decoupled"]:
            theta.mul_(1.0 - lr * wd)
        else:
            direction = direction.add(theta, alpha=wd)
    if momentum != 0:
        buf = states["momentum_buffer"]
        if hyper["first_step"]:  # torch starts the buffer at the first gradient, undamped
            buf.copy_(direction)
        else:
            buf.mul_(momentum).add_(direction, alpha=1.0 - hyper["dampening"])
        direction = direction.add(buf, alpha=momentum) if hyper["nesterov"] else buf
    theta.sub_(direction * lr)  # not add_(alpha=-lr): a Python alpha would recompile the fused step per lr


def adam_rule(
    theta: torch.Tensor, grad: torch.Tensor, states: dict[str, torch.Tensor], hyper: Mapping[str, Any]
) -> None:
    """``torch.optim.Adam``'s update (``AdamW``'s when ``hyper["decoupled"]``)."""
    lr, wd = hyper["lr"], hyper["weight_decay"]
    if wd != 0:
        if hyper["decoupled"]:
            theta.mul_(1.0 - lr * wd)
        else:
            grad = grad.add(theta, alpha=wd)
    exp_avg, exp_avg_sq = states["exp_avg"], states["exp_avg_sq"]
    exp_avg.lerp_(grad, 1.0 - hyper["beta1"])
    exp_avg_sq.mul_(hyper["beta2"]).addcmul_(grad, grad, value=1.0 - hyper["beta2"])
    denom = (exp_avg_sq.sqrt() / hyper["bias_root"]).add_(hyper["eps"])
    theta.sub_(exp_avg / denom * hyper["step_size"])  # tensor arithmetic: a schedule does not recompile


def lion_rule(
    theta: torch.Tensor, grad: torch.Tensor, states: dict[str, torch.Tensor], hyper: Mapping[str, Any]
) -> None:
    """Lion: ``theta -= lr * sign(beta1 m + (1 - beta1) g)``; then ``m = beta2 m + (1 - beta2) g``."""
    lr, wd = hyper["lr"], hyper["weight_decay"]
    exp_avg = states["exp_avg"]
    if wd != 0:
        theta.mul_(1.0 - lr * wd)
    theta.sub_(exp_avg.lerp(grad, 1.0 - hyper["beta1"]).sign_() * lr)
    exp_avg.lerp_(grad, 1.0 - hyper["beta2"])


class _FlashSGDBase(FlashOptimizer):
    """Shared by FlashSGD (coupled L2 weight decay) and FlashSGDW (decoupled)."""

    decoupled = False

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        quantize: bool = True,
        master_weight_bits: int | None = 24,
        compress_state_dict: bool = True,
        fused: bool | None = None,
    ) -> None:
        if momentum < 0.0:
            raise ConfigError(f"momentum must be >= 0, got {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ConfigError("nesterov momentum needs momentum > 0 and dampening = 0", "set momentum=0.9, dampening=0")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(
            params,
            defaults,
            quantize=quantize,
            master_weight_bits=master_weight_bits,
            compress_state_dict=compress_state_dict,
            fused=fused,
        )

    def state_kinds(self, group: dict[str, Any]) -> dict[str, str]:
        return {"momentum_buffer": SIGNED} if group["momentum"] != 0 else {}

    def hyperparameters(self, group: dict[str, Any], step: int) -> dict[str, Any]:
        return dict(
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            decoupled=self.decoupled,
            first_step=step == 1,
        )

    rule = staticmethod(sgd_rule)


class FlashSGD(_FlashSGDBase):
    """SGD with momentum as ``torch.optim.SGD`` (weight decay added to the gradient)."""


class FlashSGDW(_FlashSGDBase):
    """SGD with decoupled weight decay: ``theta *= 1 - lr * weight_decay`` before the step."""

    decoupled = True


class _FlashAdamBase(FlashOptimizer):
    """Shared by FlashAdam (coupled L2) and FlashAdamW (decoupled, as ``torch.optim.AdamW``)."""

    decoupled = False
    default_weight_decay = 0.0

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | None = None,
        *,
        quantize: bool = True,
        master_weight_bits: int | None = 24,
        compress_state_dict: bool = True,
        fused: bool | None = None,
    ) -> None:
        _check_betas(betas)
        if eps < 0.0:
            raise ConfigError(f"eps must be >= 0, got {eps}")
        wd = self.default_weight_decay if weight_decay is None else weight_decay
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=wd)
        super().__init__(
            params,
            defaults,
            quantize=quantize,
            master_weight_bits=master_weight_bits,
            compress_state_dict=compress_state_dict,
            fused=fused,
        )

    def state_kinds(self, group: dict[str, Any]) -> dict[str, str]:
        return {"exp_avg": SIGNED, "exp_avg_sq": UNSIGNED}

    rule = staticmethod(adam_rule)

    def hyperparameters(self, group: dict[str, Any], step: int) -> dict[str, Any]:
        beta1, beta2 = group["betas"]
        return dict(
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            beta1=beta1,
            beta2=beta2,
            step_size=group["lr"] / (1.0 - beta1**step),
            bias_root=(1.0 - beta2**step) ** 0.5,
            decoupled=self.decoupled,
        )


class FlashAdam(_FlashAdamBase):
    """Adam as ``torch.optim.Adam`` (weight decay added to the gradient)."""


class FlashAdamW(_FlashAdamBase):
    """AdamW as ``torch.optim.AdamW``: decoupled decay, default ``weight_decay=0.01``."""

    decoupled = True
    default_weight_decay = 1e-2


class FlashLion(FlashOptimizer):
    """Lion (Chen et al. 2023): ``theta -= lr * sign(beta1 m + (1 - beta1) g)``, decoupled decay.

    Lion's steps have unit size per coordinate, so its ``lr`` is typically 3-10x below AdamW's; the
    default 1e-4 follows the Lion paper (the FlashOptim authors' FlashLion defaults to 1e-3).
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        quantize: bool = True,
        master_weight_bits: int | None = 24,
        compress_state_dict: bool = True,
        fused: bool | None = None,
    ) -> None:
        _check_betas(betas)
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay)
        super().__init__(
            params,
            defaults,
            quantize=quantize,
            master_weight_bits=master_weight_bits,
            compress_state_dict=compress_state_dict,
            fused=fused,
        )

    def state_kinds(self, group: dict[str, Any]) -> dict[str, str]:
        return {"exp_avg": SIGNED}

    rule = staticmethod(lion_rule)

    def hyperparameters(self, group: dict[str, Any], step: int) -> dict[str, Any]:
        beta1, beta2 = group["betas"]
        return dict(lr=group["lr"], weight_decay=group["weight_decay"], beta1=beta1, beta2=beta2)
