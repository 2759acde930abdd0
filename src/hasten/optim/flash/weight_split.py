"""Split an fp32 master weight into a 16-bit weight plus a small integer correction.

Under round-to-nearest, the fp32 value ``theta`` lies within half a unit in the last
place (ULP) of its 16-bit rounding ``theta16``. The size of that interval follows from
``theta16``'s exponent, so storing the residual as a float would waste bits on an
exponent we already know. We store only *where* in ``[-ULP/2, +ULP/2]`` the true value
lies, as a signed integer ``rho`` in ``[-N, N]`` (FlashOptim, Gonzalez Ortiz et al. 2026,
section 3.1):

- ``int8`` (``N = 127``): bf16 + int8 = "24-bit" master weights, about 2^-16 relative error;
- ``int16`` (``N = 32767``): bf16 + int16 = "32-bit" semantics, almost all values bit-exact.

Scaling by ``2^-l`` in one multiplication would overflow fp32 for the smallest exponents
(``l`` goes down to -134 for bf16 subnormals). We scale in two exact steps instead: by a
constant ``2^(mantissa_bits + 1)``, then by the power of two of ``theta16``'s exponent,
read straight from its bits (zeros and subnormals share the smallest normal exponent).
Both factors are powers of two and the result lies in ``[-1, 1]``, so nothing overflows and
nothing is rounded; the same holds on the way back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class NarrowFormat:
    """The facts about a 16-bit float format that the split needs."""

    mantissa_bits: int
    exponent_bits: int
    bias: int
    int_view: torch.dtype = torch.int16


NARROW_FORMATS: dict[torch.dtype, NarrowFormat] = {
    torch.bfloat16: NarrowFormat(mantissa_bits=7, exponent_bits=8, bias=127),
    torch.float16: NarrowFormat(mantissa_bits=10, exponent_bits=5, bias=15),
}

#: ``master_weight_bits`` -> the integer dtype of the correction (bf16 + correction bits).
CORRECTION_DTYPES: dict[int, torch.dtype] = {24: torch.int8, 32: torch.int16}


def correction_dtype(master_weight_bits: int | None) -> torch.dtype | None:
    """The correction's integer dtype for ``master_weight_bits`` (None: no correction)."""
    if master_weight_bits is None:
        return None
    if master_weight_bits not in CORRECTION_DTYPES:
        raise ValueError(f"master_weight_bits must be 24, 32 or None, got {master_weight_bits!r}")
    return CORRECTION_DTYPES[master_weight_bits]


def _levels(dtype: torch.dtype) -> int:
    """N: the largest magnitude of the correction integer (127 for int8, 32767 for int16)."""
    return torch.iinfo(dtype).max


def exponent_power(narrow: torch.Tensor) -> torch.Tensor:
    """``2^e`` as fp32, with ``e`` the unbiased exponent of each 16-bit value.

    Masking the sign and mantissa bits of the value's fp32 form leaves exactly that power of
    two (one bit operation). Zeros and subnormals, whose ULP is that of the smallest normal,
    get the smallest normal power; infinities and NaNs give inf.
    """
    fmt = NARROW_FORMATS[narrow.dtype]
    return _power_of(narrow.float(), fmt)


def _power_of(values: torch.Tensor, fmt: NarrowFormat) -> torch.Tensor:
    """``exponent_power`` for the fp32 copy of 16-bit values (which has the same exponent)."""
    power = (values.view(torch.int32) & 0x7F800000).view(torch.float32)
    return power.clamp_min_(2.0 ** (1 - fmt.bias))


def half_ulp_log2(narrow: torch.Tensor) -> torch.Tensor:
    """``l = log2(ULP(narrow) / 2)`` per element, as int32 (for tests and inspection)."""
    fmt = NARROW_FORMATS[narrow.dtype]
    return torch.frexp(exponent_power(narrow))[1] - 1 - fmt.mantissa_bits - 1


def split(theta: torch.Tensor, narrow_dtype: torch.dtype, correction: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 ``theta`` -> (``theta16`` in ``narrow_dtype``, integer correction ``rho``)."""
    narrow = torch.empty(theta.shape, dtype=narrow_dtype, device=theta.device)
    rho = torch.empty(theta.shape, dtype=correction, device=theta.device)
    split_into(theta, narrow, rho)
    return narrow, rho


def split_into(theta: torch.Tensor, narrow_out: torch.Tensor, rho_out: torch.Tensor) -> None:
    """Write the split of fp32 ``theta`` into existing tensors (the optimizer's parameter and state)."""
    fmt = NARROW_FORMATS[narrow_out.dtype]
    theta = theta.float()
    narrow = theta.to(narrow_out.dtype)
    widened = narrow.float()
    residual = theta - widened  # exact: the rounding error of a float is a float
    # residual / 2^l with 2^l = 2^e * 2^-(mantissa_bits + 1): two exact power-of-two steps
    normalized = residual.mul_(2.0 ** (fmt.mantissa_bits + 1)).div_(_power_of(widened, fmt))
    levels = _levels(rho_out.dtype)
    rho = normalized.nan_to_num_(0.0).clamp_(-1.0, 1.0).mul_(levels).round_()  # inf/NaN: nothing to correct
    narrow_out.copy_(narrow)
    rho_out.copy_(rho)


def reconstruct(narrow: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """(``theta16``, ``rho``) -> the fp32 master weight ``theta16 + (rho / N) * 2^l``."""
    fmt = NARROW_FORMATS[narrow.dtype]
    step = 2.0 ** -(fmt.mantissa_bits + 1) / _levels(rho.dtype)  # one level, in units of 2^e
    widened = narrow.float()
    offset = rho.float().mul_(step).mul_(_power_of(widened, fmt))  # this order cannot overflow
    return offset.add_(widened)
