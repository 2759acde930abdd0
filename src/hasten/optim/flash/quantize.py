"""Companded 8-bit optimizer state: groups of 32 values, one scale per group.

Linear 8-bit quantization spends its 256 levels evenly over ``[-max, max]``, but optimizer
states are heavy-tailed: most values are far below the group maximum and land on zero. A
*compander* (FlashOptim, Gonzalez Ortiz et al. 2026, section 3.2) bends the values before
the linear step so that small values get more levels:

- momentum (signed, ``int8``): softsign ``z = 2x / (1 + |x|)`` of ``x = m / max|m|``,
  inverse ``x = z / (2 - |z|)``;
- variance (non-negative, ``uint8``): square root, ``r = sqrt(v)`` quantized against
  ``max r``, squared on the way back.

Both are exactly invertible, cost one division or square root per element, and have no
hyperparameters.

**Scale format.** Each group's scale is stored as **bfloat16**, rounded *up* to the next
representable value. fp16 scales (FlashOptim's choice) have a 5-bit exponent: a group
whose largest value is below about 6e-8 flushes to a zero scale, so the whole group
dequantizes to zero (or to NaN when another group overflows past 65504). For the
variance the stored quantity is ``sqrt(v)``, roughly ``|gradient|``, so tiny gradients
(a loss scaled down, an embedding row rarely hit) hit that floor in practice. bf16 has
fp32's 8-bit exponent, so the scale keeps every magnitude fp32 can hold, at the same
2 bytes per 32 values (0.0625 B/param per state); fp32 scales would cost 0.125. bf16's
short mantissa only makes the scale up to 0.4 % larger than the group maximum (we round
up, so ``|x| <= 1`` still holds), which costs less than one quantization level.

**Variance floor.** A positive variance that would round to level 0 is stored as
level 1 instead. ``m / (sqrt(v) + eps)`` with ``v == 0`` and ``m != 0`` is the failure that
makes uncompanded 8-bit Adam diverge; the floor removes it at the price of a slightly
smaller step for the tiniest coordinates of a group.
"""

from __future__ import annotations

import torch

GROUP_SIZE = 32
SCALE_DTYPE = torch.bfloat16
SIGNED_LEVELS = 127  # int8 codes in [-127, 127]
UNSIGNED_LEVELS = 255  # uint8 codes in [0, 255]


def padded_length(numel: int) -> int:
    """Codes are stored in whole groups: ``numel`` rounded up to a multiple of ``GROUP_SIZE``."""
    return -(-numel // GROUP_SIZE) * GROUP_SIZE


def num_groups(numel: int) -> int:
    return padded_length(numel) // GROUP_SIZE


def _grouped(values: torch.Tensor) -> torch.Tensor:
    """Flat fp32 values -> (groups, GROUP_SIZE), zero-padded at the end."""
    flat = values.reshape(-1).float()
    pad = padded_length(flat.numel()) - flat.numel()
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    return flat.view(-1, GROUP_SIZE)


def round_up_scale(scale: torch.Tensor, dtype: torch.dtype = SCALE_DTYPE) -> torch.Tensor:
    """Non-negative fp32 scales -> ``dtype``, never smaller than the input (so ``|x| <= 1``).

    Rounding to nearest could land just below the group maximum; for a positive finite
    float, adding one to its bit pattern gives the next representable value up.
    """
    stored = scale.to(dtype)
    next_up = (stored.view(torch.int16) + 1).view(dtype)
    return torch.where(stored.float() < scale, next_up, stored)  # no host sync: cheap on a GPU too


def _safe(scale: torch.Tensor) -> torch.Tensor:
    """Stored scale as fp32 divisor: an all-zero group (scale 0) divides by one instead."""
    divisor = scale.float()
    return torch.where(divisor > 0, divisor, torch.ones_like(divisor))


# ------------------------------------------------------------------ momentum (signed)
def quantize_signed(
    values: torch.Tensor, *, companded: bool = True, scale_dtype: torch.dtype = SCALE_DTYPE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed values -> (int8 codes, padded flat; one scale per group of 32)."""
    groups = _grouped(values)
    scales = round_up_scale(groups.abs().amax(dim=1), scale_dtype)
    x = (groups / _safe(scales).unsqueeze(1)).clamp_(-1.0, 1.0)
    if companded:  # softsign: z = 2x / (1 + |x|)
        x = x.div_(x.abs().add_(1.0)).mul_(2.0)
    codes = x.mul_(SIGNED_LEVELS).round_().to(torch.int8)
    return codes.view(-1), scales


def dequantize_signed(codes: torch.Tensor, scales: torch.Tensor, numel: int, *, companded: bool = True) -> torch.Tensor:
    """Inverse of ``quantize_signed``: the first ``numel`` values, flat fp32."""
    z = codes.view(-1, GROUP_SIZE).float().div_(SIGNED_LEVELS)
    if companded:  # x = z / (2 - |z|)
        z = z.div_(z.abs().neg_().add_(2.0))
    return z.mul_(scales.float().unsqueeze(1)).view(-1)[:numel]


# --------------------------------------------------------------- variance (unsigned)
def quantize_unsigned(
    values: torch.Tensor, *, companded: bool = True, scale_dtype: torch.dtype = SCALE_DTYPE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-negative values -> (uint8 codes, padded flat; one scale per group of 32).

    Companded: ``sqrt`` first, and a positive value never becomes code 0 (see module doc).
    """
    groups = _grouped(values).clamp(min=0.0)  # a new tensor: the caller's values stay untouched
    if companded:
        groups = groups.sqrt_()
    scales = round_up_scale(groups.amax(dim=1), scale_dtype)
    levels = groups.div_(_safe(scales).unsqueeze(1)).clamp_(0.0, 1.0).mul_(UNSIGNED_LEVELS)
    codes = levels.round()
    if companded:  # the floor: max(round(q), sign(q)) lifts (0, 0.5) to 1 and keeps exact zeros
        codes = torch.maximum(codes, levels.sign_())
    return codes.to(torch.int16).to(torch.uint8).view(-1), scales  # via int16: a much faster conversion


def dequantize_unsigned(
    codes: torch.Tensor, scales: torch.Tensor, numel: int, *, companded: bool = True
) -> torch.Tensor:
    """Inverse of ``quantize_unsigned``: the first ``numel`` values, flat fp32."""
    r = codes.view(-1, GROUP_SIZE).float().mul_(scales.float().unsqueeze(1) / UNSIGNED_LEVELS)
    if companded:
        r = r.square_()
    return r.view(-1)[:numel]
