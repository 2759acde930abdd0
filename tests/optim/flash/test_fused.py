"""The fused (torch.compile) FlashOptim update against the eager one it is compiled from.

Compiling takes tens of seconds on a 2-core machine (more under load), so these tests are slow and
use tiny tensors. Stated tolerance: the first step is bit for bit for SGD and Lion; for AdamW the
weights are, and its states within one code level. Later, Inductor's C++/Triton
arithmetic can differ from eager's in the last fp32 bit, which after requantization moves a state
code by one level; its effect on the next update then shifts a few weight corrections by a few
levels (each 2^-15 of the weight). So: codes within one level, and fewer than 1% of master weights
more than 2^-14 (relative) apart.
"""

import pytest
import torch

from hasten.optim.flash import FlashAdamW, FlashLion, FlashSGD
from hasten.optim.flash.fused import compile_problem
from hasten.optim.flash.weight_split import reconstruct

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        compile_problem("cpu") is not None, reason=f"torch.compile unavailable: {compile_problem('cpu')}"
    ),
]

CASES = {
    "adamw": (FlashAdamW, dict(lr=1e-3, weight_decay=0.1)),
    "sgd": (FlashSGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    "lion": (FlashLion, dict(lr=1e-4, weight_decay=0.1)),
}
SHAPES = [(70, 33), (5,), (300, 64)]  # two packed together, one large enough for the chunked path


def _pair(case: str):
    cls, options = CASES[case]
    generator = torch.Generator().manual_seed(0)
    start = [(torch.randn(s, generator=generator) * 0.05).bfloat16() for s in SHAPES]
    eager = [torch.nn.Parameter(w.clone()) for w in start]
    fused = [torch.nn.Parameter(w.clone()) for w in start]
    return (eager, cls(eager, fused=False, **options)), (fused, cls(fused, fused=True, **options)), generator


@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_steps_match_the_eager_steps_within_one_level(case, monkeypatch):
    import hasten.optim.flash.base as base

    monkeypatch.setattr(base, "BUCKET_LIMIT", 4096)  # the (300, 64) tensor takes the chunked path
    (eager, eager_opt), (fused, fused_opt), generator = _pair(case)
    for step in range(4):
        for group in eager_opt.param_groups + fused_opt.param_groups:
            group["lr"] *= 0.9  # a schedule: the fused step must not recompile (or go wrong) per lr
        for e, f in zip(eager, fused):
            e.grad = torch.randn(e.shape, generator=generator).bfloat16()
            f.grad = e.grad.clone()
        eager_opt.step()
        fused_opt.step()
        if step == 0:  # SGD and Lion bit for bit; AdamW's sqrt and division may round one fp32 bit apart
            for e, f in zip(eager, fused):
                assert torch.equal(e, f)
                for name, value in eager_opt.state[e].items():
                    if not isinstance(value, torch.Tensor):
                        continue
                    if case == "adamw":
                        gap = (value.float() - fused_opt.state[f][name].float()).abs().max()
                        assert gap <= (
                            1 if value.dtype in (torch.int8, torch.uint8) else 2**-7 * value.float().abs().max()
                        ), (name, gap)
                    else:
                        assert torch.equal(value, fused_opt.state[f][name]), name
    for e, f in zip(eager, fused):
        se, sf = eager_opt.state[e], fused_opt.state[f]
        master_e = reconstruct(e.detach(), se["weight_correction"])
        master_f = reconstruct(f.detach(), sf["weight_correction"])
        apart = (master_e - master_f).abs() > 2**-14 * master_e.abs() + 1e-9
        assert apart.float().mean() < 0.01
        for name, value in se.items():
            if name == "step":
                assert sf[name] == value
            elif name.endswith("_scales"):
                assert torch.allclose(value.float(), sf[name].float(), rtol=2**-7, atol=0)
            elif name != "weight_correction":
                assert (value.int() - sf[name].int()).abs().max() <= 1, name


def test_a_fused_optimizer_reports_that_it_is_fused():
    weight = torch.nn.Parameter(torch.zeros(4, dtype=torch.bfloat16))
    assert FlashAdamW([weight], fused=True).is_fused(torch.device("cpu"))
    assert not FlashAdamW([weight], fused=False).is_fused(torch.device("cpu"))
