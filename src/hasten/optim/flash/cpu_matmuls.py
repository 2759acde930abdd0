"""fp32 matrix products for a bf16 model on CPUs without bf16 matrix units.

FlashOptim's memory savings come from *storing* weights, gradients and activations in
bf16. Computing in bf16 pays off only on hardware with bf16 matrix units (GPUs, CPUs with
AMX or AVX512-BF16). On other CPUs, torch's bf16 GEMM is a slow fallback, 10-50x slower
than fp32. So a CPU forward pass upcasts the operands of matrix products, convolutions and
attention to fp32, computes, and casts the result back. Storage stays bf16; only the
temporaries of one operation are fp32 (like activations, they live until the backward pass).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

_LOW = (torch.bfloat16, torch.float16)
_MATRIX_OPS = {
    F.linear,
    F.bilinear,
    F.conv1d,
    F.conv2d,
    F.conv3d,
    F.conv_transpose1d,
    F.conv_transpose2d,
    F.conv_transpose3d,
    F.scaled_dot_product_attention,
    torch.matmul,
    torch.mm,
    torch.bmm,
    torch.addmm,
    torch.baddbmm,
    torch.einsum,
    torch.Tensor.matmul,
    torch.Tensor.__matmul__,
    torch.Tensor.__rmatmul__,
    torch.Tensor.mm,
    torch.Tensor.bmm,
}


def _convert(value: Any, source: tuple[torch.dtype, ...], target: torch.dtype) -> Any:
    """Cast tensors of a ``source`` dtype (inside lists and tuples too) to ``target``."""
    if isinstance(value, torch.Tensor) and value.dtype in source:
        return value.to(target)
    if isinstance(value, (list, tuple)):
        return type(value)(_convert(v, source, target) for v in value)
    return value


def _low_dtype(values: Any) -> torch.dtype | None:
    for value in values:
        if isinstance(value, torch.Tensor) and value.dtype in _LOW:
            return value.dtype
        if isinstance(value, (list, tuple)):
            found = _low_dtype(value)
            if found is not None:
                return found
    return None


class Fp32MatrixProducts(TorchFunctionMode):
    """Inside this mode, matrix products with 16-bit operands run in fp32 and return 16-bit results."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in _MATRIX_OPS:
            low = _low_dtype(args) or _low_dtype(kwargs.values())
            if low is not None:
                kwargs = {k: _convert(v, _LOW, torch.float32) for k, v in kwargs.items()}
                out = func(*_convert(args, _LOW, torch.float32), **kwargs)
                return _convert(out, (torch.float32,), low)
        return func(*args, **kwargs)


def use_fp32_matrix_products_on_cpu(model: nn.Module) -> None:
    """Run ``model``'s matrix products in fp32 whenever its parameters are on the CPU."""
    modes: list[Fp32MatrixProducts] = []

    def enter(module: nn.Module, args: tuple) -> None:
        first = next(module.parameters(), None)
        if first is not None and first.device.type == "cpu":
            mode = Fp32MatrixProducts()
            mode.__enter__()
            modes.append(mode)

    def leave(module: nn.Module, args: tuple, output: Any) -> None:
        if modes:
            modes.pop().__exit__(None, None, None)

    model.register_forward_pre_hook(enter)
    model.register_forward_hook(leave, always_call=True)
