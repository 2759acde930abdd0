"""FP8 linear layers with static scales (no amax history), as μnit Scaling trains them.

Weights and activations are cast to e4m3 (more mantissa), gradients to e5m2 (more range);
values beyond a format's largest finite number are clipped to it instead of overflowing
(a plain cast to e5m2 gives inf; clipping first makes every backend and build agree). The layer's static output
multiplier is applied to the fp32 result, as a GEMM's alpha would be.

Two backends compute the same numerics:

- ``scaled_mm``: ``torch._scaled_mm`` on CUDA devices with FP8 tensor cores (compute
  capability >= 8.9: Ada, Hopper and later); the multiplier is the GEMM's scale.
- ``emulated``: operands are rounded through the FP8 dtypes and multiplied in fp32. It is
  bit-for-bit the rounding of real FP8 but none of its speed: for tests, CPU experiments
  and checking numerics, never for timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hasten.errors import ConfigError

E4M3 = torch.float8_e4m3fn
E5M2 = torch.float8_e5m2
BACKENDS = ("auto", "scaled_mm", "emulated")


@dataclass(frozen=True)
class FP8Format:
    """Range facts of one FP8 dtype: values above ``max`` clip, below ``min_subnormal / 2`` flush to zero."""

    dtype: torch.dtype

    @property
    def max(self) -> float:
        return float(torch.finfo(self.dtype).max)

    @property
    def min_normal(self) -> float:
        return float(torch.finfo(self.dtype).tiny)

    @property
    def min_subnormal(self) -> float:
        return float(torch.finfo(self.dtype).smallest_normal) / 2 ** _mantissa_bits(self.dtype)


def _mantissa_bits(dtype: torch.dtype) -> int:
    return 3 if dtype == E4M3 else 2


def to_fp8(x: torch.Tensor, dtype: torch.dtype = E4M3) -> torch.Tensor:
    """Clip ``x`` to the format's finite range and cast it (the FP8 tensor itself)."""
    limit = torch.finfo(dtype).max
    return x.clamp(-limit, limit).to(dtype)


def round_fp8(x: torch.Tensor, dtype: torch.dtype = E4M3) -> torch.Tensor:
    """``x`` rounded to the nearest value representable in ``dtype`` (clipped, not overflowed),
    returned in fp32: what the emulated backend multiplies."""
    return to_fp8(x.float(), dtype).float()


def fp8_hardware_available(device: torch.device | str | None = None) -> bool:
    """True on a CUDA device with FP8 tensor cores (capability >= 8.9) and ``torch._scaled_mm``."""
    if not torch.cuda.is_available() or not hasattr(torch, "_scaled_mm"):
        return False
    device = torch.device(device) if device is not None else torch.device("cuda")
    if device.type != "cuda":
        return False
    return torch.cuda.get_device_capability(device) >= (8, 9)


def resolve_backend(backend: str, device: torch.device | str) -> str:
    """``auto`` -> ``scaled_mm`` where the hardware has FP8 matmuls, else ``emulated``.
    Asking for ``scaled_mm`` where there is none is a usage error."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown FP8 backend {backend!r}", f"use one of {', '.join(BACKENDS)}")
    hardware = fp8_hardware_available(device)
    if backend == "scaled_mm" and not hardware:
        raise ConfigError(
            f"FP8 matmuls (scaled_mm) asked for on {device}, which has no FP8 tensor cores",
            "use fp8_backend=emulated (same numerics, fp32 speed) or a GPU with compute capability >= 8.9",
        )
    if backend == "auto":
        return "scaled_mm" if hardware else "emulated"
    return backend


def describe_backend(backend: str) -> str:
    """The sentence a run's record carries, so an emulated run is never read as an FP8-speed one."""
    if backend == "scaled_mm":
        return "FP8 tensor cores via torch._scaled_mm (e4m3 weights/activations, e5m2 gradients, static scales)"
    return (
        "FP8 emulated: operands rounded through float8_e4m3fn (weights, activations) and float8_e5m2 "
        "(gradients), clipped to range, matmuls computed in fp32 (FP8 numerics, not FP8 speed)"
    )


def _emulated_mm(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale * a @ b`` for operands already rounded to FP8 values (held in fp32)."""
    return torch.mm(a, b) * scale


def _scaled_mm(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale * a @ b`` on FP8 tensor cores: ``a`` row-major, ``b`` column-major, rows padded to 16."""
    rows = a.shape[0]
    pad = (-rows) % 16
    if pad:
        a = torch.cat([a, a.new_zeros(pad, a.shape[1])])
    one = torch.ones((), device=a.device, dtype=torch.float32)
    out = torch._scaled_mm(
        a.contiguous(), b.t().contiguous().t(), scale_a=one * scale, scale_b=one, out_dtype=torch.float32
    )
    return out[:rows]


class _FP8Matmul(torch.autograd.Function):
    """``y = scale * q4(x) q4(W)^T``; backward ``dx = scale * q5(dy) q4(W)``, ``dW = scale * q5(dy)^T q4(x)``."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, scale: float, backend: str, stats: Any, grad_scale: float
    ) -> torch.Tensor:
        if backend == "scaled_mm":
            xq, wq = to_fp8(x, E4M3), to_fp8(weight, E4M3)
            y = _scaled_mm(xq, wq.t(), scale)
        else:
            xq, wq = round_fp8(x, E4M3), round_fp8(weight, E4M3)
            y = _emulated_mm(xq, wq.t(), scale)
        if stats is not None:
            stats.observe("input", x, E4M3)
            stats.observe("weight", weight, E4M3)
        ctx.save_for_backward(xq, wq)
        ctx.scale, ctx.backend, ctx.stats, ctx.grad_scale = scale, backend, stats, grad_scale
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        xq, wq = ctx.saved_tensors
        grad = grad * ctx.grad_scale  # static: lifts small gradients above e5m2's underflow, undone below
        if ctx.stats is not None:
            ctx.stats.observe("grad_output", grad, E5M2)
        scale = ctx.scale / ctx.grad_scale
        if ctx.backend == "scaled_mm":
            gq = to_fp8(grad, E5M2)
            grad_x = _scaled_mm(gq, wq, scale)
            grad_w = _scaled_mm(gq.t().contiguous(), xq, scale)
        else:
            gq = round_fp8(grad, E5M2)
            grad_x = _emulated_mm(gq, wq, scale)
            grad_w = _emulated_mm(gq.t(), xq, scale)
        return grad_x, grad_w, None, None, None, None


def fp8_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    scale: float = 1.0,
    backend: str = "emulated",
    stats: Any = None,
    grad_scale: float = 1.0,
) -> torch.Tensor:
    """``scale * x W^T`` with e4m3 operands and e5m2 gradients (no bias); result in ``x``'s dtype.

    ``grad_scale`` is a static factor on the output gradient before its e5m2 cast, divided out of
    the backward GEMMs' scale: it moves the gradients' range, not their value."""
    if backend not in ("scaled_mm", "emulated"):
        raise ValueError(f"fp8_linear needs a resolved backend (scaled_mm or emulated), got {backend!r}")
    shape = x.shape
    y = _FP8Matmul.apply(x.reshape(-1, shape[-1]).float(), weight, float(scale), backend, stats, float(grad_scale))
    return y.reshape(*shape[:-1], weight.shape[0]).to(x.dtype)


class FP8Linear(nn.Module):
    """A bias-free linear computing ``multiplier * x W^T`` in FP8 (or in fp32 when ``backend`` is None).

    It holds an existing ``weight`` Parameter, so swapping an ``nn.Linear`` for it leaves the
    optimizer's references intact. ``stats`` is set by ``track_fp8_numerics``.
    """

    def __init__(
        self, weight: nn.Parameter, multiplier: float = 1.0, backend: str | None = "emulated", grad_scale: float = 1.0
    ) -> None:
        super().__init__()
        self.weight = weight
        self.multiplier = multiplier
        self.grad_scale = grad_scale
        self.backend = backend
        self.stats: Any = None

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.backend is None:
            return F.linear(x, self.weight) * self.multiplier
        return fp8_linear(x, self.weight, self.multiplier, self.backend, self.stats, self.grad_scale)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"multiplier={self.multiplier:.4g}, backend={self.backend}"
        )


def hidden_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The ``nn.Linear`` layers between the model's first and last layer (counting embeddings,
    linears and convolutions in registration order): the input and output layers stay in higher
    precision, as μnit Scaling keeps them."""
    layers = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, (nn.Linear, nn.Embedding, nn.modules.conv._ConvNd))
    ]
    inner = layers[1:-1] if len(layers) > 2 else []
    return [(name, m) for name, m in inner if isinstance(m, nn.Linear)]


def apply_fp8_linears(model: nn.Module, backend: str = "emulated", grad_scale: float = 1.0) -> int:
    """Swap the hidden bias-free ``nn.Linear`` layers of any model (see ``hidden_linears``) for
    ``FP8Linear`` with multiplier 1, so the model's own parametrization is kept. Returns how many."""
    if backend not in ("scaled_mm", "emulated"):
        raise ValueError(f"apply_fp8_linears needs a resolved backend (scaled_mm or emulated), got {backend!r}")
    swapped = 0
    for name, linear in hidden_linears(model):
        if linear.bias is not None:
            continue  # the FP8 GEMM here is bias-free; layers with biases stay as they are
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, FP8Linear(linear.weight, 1.0, backend, grad_scale))
        swapped += 1
    return swapped
