"""The one-pass C kernel (``native.py``, the CPU default) against the eager update it replaces.

Stated tolerance: bit for bit for SGD and Lion. The kernel follows the eager arithmetic op by op
(FMA exactly where torch's vectorized lerp, add-with-alpha and addcmul use one, round half to
even); where it computes differently it is exact by construction (an exact power-of-two
reciprocal, a table of the 255 expanded momentum codes, clamps that cannot bind), so weights,
corrections, codes and scales are identical after several steps of every rule, correction width
and path (packed small tensors, chunked large tensors with a partial last group).
Adam's rule takes square roots, and torch's CPU sqrt is not correctly rounded (measured on this
machine: about a fifth of values one ulp from IEEE sqrt, which C's sqrtf is); an ulp in v moves a
code or a weight correction by a level, which the next steps carry along. So for Adam (as for
the compiled path, test_fused.py): codes within one level, fewer than 1% of master weights more
than 2^-14 (relative) apart.
"""

import pytest
import torch

from hasten.optim.flash import FlashAdam, FlashAdamW, FlashLion, FlashSGD, FlashSGDW, native
from hasten.optim.flash.fused import FUSED_ENV, resolve_native

pytestmark = pytest.mark.skipif(not native.available(), reason=f"the C kernel does not build here: {native.problem()}")

CASES = {
    "adamw": (FlashAdamW, dict(lr=1e-3, weight_decay=0.1)),
    "adam-l2": (FlashAdam, dict(lr=1e-3, weight_decay=0.01, betas=(0.3, 0.99))),  # beta1 < 0.5: lerp's other form
    "sgd-nesterov": (FlashSGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "sgdw-dampened": (FlashSGDW, dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "sgd-plain": (FlashSGD, dict(lr=0.05)),
    "lion": (FlashLion, dict(lr=1e-4, weight_decay=0.1)),
}
SHAPES = [(70, 33), (5,), (300, 67)]  # two packed together; one chunked, its last group partial


def _run(case: str, bits: int | None, native_on: bool, monkeypatch, grad_dtype=torch.bfloat16):
    import hasten.optim.flash.base as base

    monkeypatch.setattr(base, "BUCKET_LIMIT", 4096)  # the (300, 67) tensor takes the chunked path
    monkeypatch.setattr(base, "CHUNK", 8192)  # ... in three chunks
    if native_on:
        monkeypatch.delenv(FUSED_ENV, raising=False)
    else:
        monkeypatch.setenv(FUSED_ENV, "0")
    cls, options = CASES[case]
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter((torch.randn(s, generator=generator) * 0.05).bfloat16()) for s in SHAPES]
    optimizer = cls(params, master_weight_bits=bits, **options)
    for _ in range(4):
        for group in optimizer.param_groups:
            group["lr"] *= 0.9  # a schedule
        for p in params:
            grad = (torch.randn(p.shape, generator=generator) * 0.1).to(grad_dtype)
            if grad.dtype != p.dtype:
                p.grad_dtype = grad.dtype  # torch >= 2.10 checks; older versions accept it as is
            p.grad = grad
        optimizer.step()
    assert optimizer.is_native(params[0].device) is native_on
    return params, optimizer


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("bits", [24, 32, None])
def test_native_steps_equal_the_eager_steps(case, bits, monkeypatch):
    eager, eager_opt = _run(case, bits, False, monkeypatch)
    fast, fast_opt = _run(case, bits, True, monkeypatch)
    exact = not case.startswith("adam")
    for e, f in zip(eager, fast):
        e_state, f_state = eager_opt.state[e], fast_opt.state[f]
        if exact:
            assert torch.equal(e.view(torch.int16), f.view(torch.int16))
            for name, value in e_state.items():
                other = f_state[name]
                assert (
                    torch.equal(value.view(torch.uint8), other.view(torch.uint8))
                    if torch.is_tensor(value)
                    else value == other
                ), name
            continue
        a, b = _master(e, e_state), _master(f, f_state)
        apart = ((a - b).abs() > 2**-14 * a.abs()).float().mean()
        assert apart < 0.01 and (a - b).abs().max() <= 2**-8 * a.abs().max()
        for name in ("exp_avg", "exp_avg_sq"):
            gap = (e_state[name].int() - f_state[name].int()).abs()
            assert gap.max() <= 1 and gap.float().mean() < 0.01, name


def _master(param, state):
    from hasten.optim.flash.weight_split import reconstruct

    correction = state.get("weight_correction")
    return reconstruct(param.detach(), correction) if correction is not None else param.detach().float()


def test_fp32_gradients_take_the_kernel_too(monkeypatch):
    eager, _ = _run("lion", 24, False, monkeypatch, grad_dtype=torch.float32)
    fast, _ = _run("lion", 24, True, monkeypatch, grad_dtype=torch.float32)
    assert all(torch.equal(e, f) for e, f in zip(eager, fast))


def test_layouts_the_kernel_does_not_cover_fall_back_to_eager(monkeypatch):
    """fp32 states (quantize=False) and fp32 weights: the same results as eager, through eager."""
    monkeypatch.delenv(FUSED_ENV, raising=False)
    weights = torch.nn.Parameter(torch.randn(64))
    reference = torch.nn.Parameter(weights.detach().clone())
    fast = FlashAdamW([weights], quantize=False)
    eager = FlashAdamW([reference], quantize=False, fused=False)
    for _ in range(2):
        weights.grad = torch.ones(64)
        reference.grad = torch.ones(64)
        fast.step()
        eager.step()
    assert torch.equal(weights, reference)


def test_fused_argument_and_environment_choose_the_path(monkeypatch):
    monkeypatch.delenv(FUSED_ENV, raising=False)
    assert resolve_native(None, "cpu") is True
    assert resolve_native(False, "cpu") is False  # eager, as asked
    assert resolve_native(True, "cpu") is False  # torch.compile, as asked
    assert resolve_native(None, "cuda") is False
    monkeypatch.setenv(FUSED_ENV, "0")
    assert resolve_native(None, "cpu") is False


def test_no_compiler_is_one_clear_reason_and_an_eager_fallback(monkeypatch):
    monkeypatch.setattr(native, "_compiler", lambda: None)
    library, problem = native._library.__wrapped__()
    assert library is None and "no C compiler" in problem
