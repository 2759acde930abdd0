"""The bf16 + integer split of fp32 master weights: error bounds, bit-exactness, edge values."""

import pytest
import torch

from hasten.optim.flash.weight_split import correction_dtype, half_ulp_log2, reconstruct, split


def _gaussian_weights(n: int = 1_000_000) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(0)) * 0.02


def _mean_relative_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    nonzero = exact != 0
    return float(((approx - exact).abs()[nonzero] / exact.abs()[nonzero]).mean())


def test_bf16_plus_int8_is_about_a_thousand_times_better_than_bf16():
    theta = _gaussian_weights()
    narrow, rho = split(theta, torch.bfloat16, torch.int8)
    assert narrow.dtype == torch.bfloat16 and rho.dtype == torch.int8
    bf16_only = _mean_relative_error(theta.bfloat16().float(), theta)
    corrected = _mean_relative_error(reconstruct(narrow, rho), theta)
    assert 1e-3 < bf16_only < 2e-3
    assert 1e-6 < corrected < 1e-5  # ~5.6e-6: ULP/2 split into 127 steps
    assert torch.equal(narrow, theta.bfloat16())  # the weight itself is the ordinary bf16 rounding


def test_bf16_plus_int16_is_near_exact_fp32():
    theta = _gaussian_weights()
    narrow, rho = split(theta, torch.bfloat16, torch.int16)
    rebuilt = reconstruct(narrow, rho)
    assert _mean_relative_error(rebuilt, theta) < 5e-10
    assert float((rebuilt == theta).float().mean()) > 0.99


@pytest.mark.parametrize("bits, levels", [(torch.int8, 127), (torch.int16, 32767)])
def test_error_bound_holds_across_the_whole_fp32_range(bits, levels):
    """Random bit patterns cover every exponent: normals, subnormals, tiny and huge values."""
    patterns = torch.randint(
        -(2**31), 2**31 - 1, (400_000,), generator=torch.Generator().manual_seed(1), dtype=torch.int64
    ).to(torch.int32)
    theta = patterns.view(torch.float32)
    theta = theta[torch.isfinite(theta) & torch.isfinite(theta.bfloat16())]
    narrow, rho = split(theta, torch.bfloat16, bits)
    rebuilt = reconstruct(narrow, rho)
    assert torch.isfinite(rebuilt).all()  # the two-step scaling never overflows
    half_ulp = torch.ldexp(torch.ones_like(theta), half_ulp_log2(narrow))
    # rounding rho to an integer costs at most half a level; fp32 arithmetic adds at most one fp32 ulp
    bound = half_ulp / levels * 0.5 + theta.abs() * 2**-23 + 2**-149
    assert ((rebuilt - theta).abs() <= bound * 1.001).all()


def test_subnormals_zeros_and_extremes():
    theta = torch.tensor([0.0, -0.0, 1e-45, -3e-39, 1e-40, 1e-38, 2.5e-38, 1.0, -3.3e38, 3.0e38])
    narrow, rho = split(theta, torch.bfloat16, torch.int16)
    rebuilt = reconstruct(narrow, rho)
    assert rebuilt[0] == 0 and rebuilt[1] == 0
    assert torch.allclose(rebuilt[2:], theta[2:], rtol=1e-6, atol=2e-45)
    assert (rho[[0, 1, 7]] == 0).all()  # exactly representable values need no correction


def test_fp16_split_improves_on_fp16():
    theta = torch.randn(100_000, generator=torch.Generator().manual_seed(2))
    narrow, rho = split(theta, torch.float16, torch.int8)
    fp16_alone = _mean_relative_error(theta.half().float(), theta)
    assert _mean_relative_error(reconstruct(narrow, rho), theta) < fp16_alone / 100


def test_master_weight_bits_names_the_correction_width():
    assert correction_dtype(24) == torch.int8
    assert correction_dtype(32) == torch.int16
    assert correction_dtype(None) is None
    with pytest.raises(ValueError, match="24, 32 or None"):
        correction_dtype(16)
