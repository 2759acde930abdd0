"""Companded 8-bit states: round trips, companding versus linear, extreme scales."""

import torch

from hasten.optim.flash import quantize as q


def _student_t(n: int, df: int, g: torch.Generator) -> torch.Tensor:
    normal = torch.randn(n, generator=g)
    chi2 = torch.randn(n, df, generator=g).pow(2).sum(dim=1)
    return normal / (chi2 / df).sqrt()


def _nmse(approx: torch.Tensor, exact: torch.Tensor) -> float:
    approx, exact = approx.double(), exact.double()
    return float((approx - exact).pow(2).sum() / exact.pow(2).sum())


def _adam_states(steps: int, quantized: str, companded: bool, n: int = 32 * 1024):
    """Adam moments over heavy-tailed gradients (Student-t, log-normal scale per coordinate),
    exact and with one of them stored in 8 bits every step (errors feed back, as in training)."""
    scale = torch.exp(1.5 * torch.randn(n, generator=torch.Generator().manual_seed(0))) * 1e-3
    grads = torch.Generator().manual_seed(1)
    m, v = torch.zeros(n), torch.zeros(n)
    mq, vq = torch.zeros(n), torch.zeros(n)
    for _ in range(steps):
        g = _student_t(n, 3, grads) * scale
        for mom, var in ((m, v), (mq, vq)):
            mom.lerp_(g, 0.1)
            var.mul_(0.999).addcmul_(g, g, value=0.001)
        if quantized == "m":
            mq.copy_(q.dequantize_signed(*q.quantize_signed(mq, companded=companded), n, companded=companded))
        else:
            vq.copy_(q.dequantize_unsigned(*q.quantize_unsigned(vq, companded=companded), n, companded=companded))
    return (m, v), (mq, vq)


def _update_nmse(exact, approx) -> float:
    """Error in what Adam applies, m / (sqrt(v) + eps), not in the raw state."""
    (m, v), (mq, vq) = exact, approx
    return _nmse(mq / (vq.sqrt() + 1e-8), m / (v.sqrt() + 1e-8))


def test_storage_is_one_byte_per_value_and_one_bf16_scale_per_32():
    values = torch.randn(1000)
    codes, scales = q.quantize_signed(values)
    assert codes.dtype == torch.int8 and codes.numel() == 1024
    assert scales.dtype == torch.bfloat16 and scales.numel() == 32
    ucodes, uscales = q.quantize_unsigned(values.abs())
    assert ucodes.dtype == torch.uint8 and uscales.numel() == 32


def test_round_trip_error_is_within_one_level():
    values = torch.randn(4096, generator=torch.Generator().manual_seed(3))
    codes, scales = q.quantize_signed(values)
    back = q.dequantize_signed(codes, scales, values.numel())
    group_max = values.view(-1, 32).abs().amax(dim=1, keepdim=True)
    # softsign's inverse has slope at most 2, so half a level of z is at most 1/127 of the group max
    assert ((back - values).view(-1, 32).abs() <= group_max / 127 * 1.01).all()
    assert torch.equal(q.dequantize_signed(*q.quantize_signed(back), values.numel()), back)  # idempotent
    variance = values.pow(2)
    ucodes, uscales = q.quantize_unsigned(variance)
    vback = q.dequantize_unsigned(ucodes, uscales, values.numel())
    root_max = variance.view(-1, 32).sqrt().amax(dim=1, keepdim=True)
    assert ((vback.sqrt() - variance.sqrt()).view(-1, 32).abs() <= root_max / 255 * 1.01).all()


def test_group_maxima_are_reproduced_almost_exactly():
    values = torch.randn(64 * 32, generator=torch.Generator().manual_seed(4))
    back = q.dequantize_signed(*q.quantize_signed(values), values.numel())
    maxima = values.view(-1, 32).abs().argmax(dim=1) + torch.arange(64) * 32
    assert torch.allclose(back[maxima], values[maxima], rtol=1e-2)


def test_companding_beats_linear_on_heavy_tailed_momentum():
    exact, companded = _adam_states(60, "m", companded=True)
    _, linear = _adam_states(60, "m", companded=False)
    m = exact[0]
    median_error = lambda approx: float(((approx[0] - m).abs() / m.abs()).median())  # noqa: E731
    assert median_error(companded) < 0.7 * median_error(linear)
    assert _update_nmse(exact, companded) < 0.7 * _update_nmse(exact, linear)


def test_companding_beats_linear_on_variance_and_keeps_it_nonzero():
    exact, companded = _adam_states(60, "v", companded=True)
    _, linear = _adam_states(60, "v", companded=False)
    v = exact[1]
    assert float((linear[1] == 0).float().mean()) > 0.3  # linear 8-bit zeroes most small variances...
    assert not (companded[1][v > 0] == 0).any()  # ...companded never turns a positive variance into zero
    assert _update_nmse(exact, linear) > 1e3  # and m / sqrt(0) explodes: why linear 8-bit Adam diverges
    assert _update_nmse(exact, companded) < 0.2
    assert _nmse(companded[1].sqrt(), v.sqrt()) < 0.2 * _nmse(linear[1].sqrt(), v.sqrt())  # sqrt(v): Adam's denominator


def test_all_zero_groups_stay_zero():
    values = torch.zeros(70)
    assert torch.equal(q.dequantize_signed(*q.quantize_signed(values), 70), values)
    assert torch.equal(q.dequantize_unsigned(*q.quantize_unsigned(values), 70), values)


def test_bf16_scales_survive_extreme_gradient_scales_where_fp16_scales_fail():
    base = torch.randn(256, generator=torch.Generator().manual_seed(6))
    for scale in (1e-12, 1e-20, 1e8, 1e30):
        values = base * scale
        back = q.dequantize_signed(*q.quantize_signed(values), values.numel())
        assert torch.isfinite(back).all()
        assert _nmse(back, values) < 1e-4, scale
        variance = values.pow(2) if scale < 1e19 else values.abs()  # stay inside fp32's range
        vback = q.dequantize_unsigned(*q.quantize_unsigned(variance), variance.numel())
        assert (vback > 0).all() and _nmse(vback, variance) < 1e-3, scale
    tiny = base * 1e-12  # below fp16's smallest subnormal (~6e-8): an fp16 scale cannot represent the group
    codes, scales = q.quantize_signed(tiny, scale_dtype=torch.float16)
    assert (q.dequantize_signed(codes, scales, tiny.numel()) == 0).all()  # every value collapses to zero
    codes, scales = q.quantize_unsigned(tiny.pow(2), scale_dtype=torch.float16)  # sqrt(v) ~ 1e-12 as well
    assert _nmse(q.dequantize_unsigned(codes, scales, tiny.numel()), tiny.pow(2)) > 1e3  # off by orders of magnitude
    huge = base * 1e6  # past fp16's largest value (65504): the scale overflows
    codes, scales = q.quantize_signed(huge, scale_dtype=torch.float16)
    assert not torch.isfinite(q.dequantize_signed(codes, scales, huge.numel())).all()


def test_scales_round_up_so_values_never_clip():
    values = torch.tensor([1.0 + 2**-9] * 32)  # rounds *down* to 1.0 in bf16 under round-to-nearest
    codes, scales = q.quantize_signed(values)
    assert float(scales[0]) >= 1.0 + 2**-9
    assert float(q.dequantize_signed(codes, scales, 32).max()) >= 1.0
