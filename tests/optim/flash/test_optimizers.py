"""The five FlashOptim rules against torch (or a plain fp32 reference), plus their checkpoints."""

import io

import pytest
import torch

from hasten.errors import CheckpointError, ConfigError
from hasten.optim.flash import FlashAdam, FlashAdamW, FlashLion, FlashSGD, FlashSGDW, cast_model
from hasten.optim.flash.weight_split import reconstruct
from tests.optim.flash.reference import ReferenceLion, ReferenceSGDW
from tests.optim.flash.tiny_models import char_batches, lm_loss, seeded_char_lm, twin

CASES = {
    "sgd_nesterov": (torch.optim.SGD, FlashSGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "sgd_dampened": (torch.optim.SGD, FlashSGD, dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "sgdw": (ReferenceSGDW, FlashSGDW, dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    "adam": (torch.optim.Adam, FlashAdam, dict(lr=1e-3, weight_decay=0.01)),
    "adamw": (torch.optim.AdamW, FlashAdamW, dict(lr=1e-3, weight_decay=0.1)),
    "lion": (ReferenceLion, FlashLion, dict(lr=1e-4, weight_decay=0.1)),
}


def _start(shape=(300, 37)):
    """bf16-representable weights (so the split starts exact) and bf16 gradients, shared by both sides."""
    g = torch.Generator().manual_seed(0)
    weights = (torch.randn(shape, generator=g) * 0.05).bfloat16().float()
    grads = [torch.randn(shape, generator=g).bfloat16() for _ in range(10)]
    return weights, grads


def _run(case: str, steps: int, **flash_options):
    torch_cls, flash_cls, kwargs = CASES[case]
    weights, grads = _start()
    ref = torch.nn.Parameter(weights.clone())
    ref_opt = torch_cls([ref], **kwargs)
    flash = torch.nn.Parameter(weights.bfloat16())
    flash_opt = flash_cls([flash], **kwargs, **flash_options)
    for grad in grads[:steps]:
        ref.grad = grad.float()
        ref_opt.step()
        flash.grad = grad.clone()
        flash_opt.step()
    return weights, ref.detach(), reconstruct(flash.detach(), flash_opt.state[flash]["weight_correction"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_step_with_32_bit_master_weights_matches_the_reference(case):
    weights, ref, got = _run(case, 1, master_weight_bits=32)
    update = (ref - weights).abs().max()
    # stated tolerance: 1e-5 of the largest update, plus fp32 rounding of the weight itself
    assert ((got - ref).abs() <= 1e-5 * update + 2**-22 * ref.abs()).all()


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_step_with_24_bit_master_weights_is_within_the_split_error(case):
    weights, ref, got = _run(case, 1)
    # the int8 correction resolves ULP(bf16)/254, at most 2^-15 of the weight
    assert ((got - ref).abs() <= 2**-15 * ref.abs() + 1e-5 * (ref - weights).abs().max()).all()


@pytest.mark.parametrize("case", sorted(CASES))
def test_ten_steps_with_8_bit_states_track_the_reference(case):
    weights, ref, got = _run(case, 10)
    ref_update, got_update = ref - weights, got - weights
    relative = float((got_update - ref_update).norm() / ref_update.norm())
    if case == "lion":  # sign updates: quantization flips a few near-zero momenta, each by 2 lr
        flipped = ((got_update - ref_update).abs() > CASES[case][2]["lr"]).float().mean()
        assert flipped < 0.01 and relative < 0.08, (flipped, relative)
    else:
        assert relative < 0.03, relative


def test_first_step_is_exact_whatever_the_state_storage():
    """States start at zero, which 8 bits hold exactly: quantization only matters from step two."""
    _, _, quantized = _run("adamw", 1, quantize=True)
    _, _, full = _run("adamw", 1, quantize=False)
    assert torch.equal(quantized, full)


def test_fp32_parameters_need_no_correction_and_still_train():
    weights, grads = _start()
    param = torch.nn.Parameter(weights.clone())
    opt = FlashAdamW([param], lr=1e-3)
    assert "weight_correction" not in opt.state[param]
    param.grad = grads[0].float()
    opt.step()
    assert param.dtype == torch.float32 and not torch.equal(param.detach(), weights)


def test_without_correction_small_updates_are_lost():
    """master_weight_bits=None: bf16 weights swallow updates below half their ULP."""
    param = torch.nn.Parameter(torch.ones(64, dtype=torch.bfloat16))
    opt = FlashSGD([param], lr=1e-4, master_weight_bits=None)
    param.grad = torch.ones(64, dtype=torch.bfloat16)
    opt.step()
    assert (param == 1).all()
    corrected = torch.nn.Parameter(torch.ones(64, dtype=torch.bfloat16))
    opt = FlashSGD([corrected], lr=1e-4)
    for _ in range(100):
        corrected.grad = torch.ones(64, dtype=torch.bfloat16)
        opt.step()
    assert torch.allclose(corrected.float(), torch.full((64,), 0.99), atol=4e-3)  # 100 tiny steps add up


def test_bad_arguments_are_refused_with_one_line():
    params = [torch.nn.Parameter(torch.zeros(4))]
    with pytest.raises(ConfigError, match="learning rate"):
        FlashAdamW(params, lr=-1.0)
    with pytest.raises(ConfigError, match="betas"):
        FlashAdamW(params, betas=(0.9, 1.0))
    with pytest.raises(ConfigError, match="master_weight_bits"):
        FlashAdamW(params, master_weight_bits=16)
    with pytest.raises(ConfigError, match="nesterov"):
        FlashSGD(params, lr=0.1, nesterov=True)


# ------------------------------------------------------------------ checkpoints
def _trained(data_dir, steps: int = 3, compress: bool = True):
    batches, vocab = char_batches(data_dir)
    model = cast_model(seeded_char_lm(vocab))
    opt = FlashAdamW(model.parameters(), lr=3e-3, compress_state_dict=compress)
    stream = batches()
    for _ in range(steps):
        lm_loss(model, next(stream)).backward()
        opt.step()
        opt.zero_grad()
    return model, opt, stream


def _save_load(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    size = buffer.tell()
    buffer.seek(0)
    return torch.load(buffer, weights_only=True), size


def _continue(model, opt, batches, steps: int = 2):
    for _ in range(steps):
        lm_loss(model, next(batches)).backward()
        opt.step()
        opt.zero_grad()


def test_compressed_state_dict_resumes_bit_for_bit(data_dir):
    model, opt, stream = _trained(data_dir)
    loaded, _ = _save_load(opt.state_dict())
    assert any(k.endswith("_scales") for k in loaded["state"][0])
    copy = twin(model)
    copy_opt = FlashAdamW(copy.parameters(), lr=3e-3)
    copy_opt.load_state_dict(loaded)
    rest = list(stream)[:2]
    _continue(model, opt, iter(rest))
    _continue(copy, copy_opt, iter(rest))
    for (name, a), b in zip(model.named_parameters(), copy.parameters()):
        assert torch.equal(a, b), name
    for a, b in zip(opt.state.values(), copy_opt.state.values()):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a if k != "step")


def test_bf16_state_dict_is_portable_and_close(data_dir):
    model, opt, stream = _trained(data_dir, compress=False)
    state, bf16_size = _save_load(opt.state_dict())
    first = state["state"][0]
    first_param = next(model.parameters())
    assert first["exp_avg"].dtype == torch.bfloat16 and first["exp_avg"].shape == first_param.shape
    assert not any(k.endswith("_scales") for k in first)
    opt.compress_state_dict = True
    _, compressed_size = _save_load(opt.state_dict())
    assert compressed_size < 0.8 * bf16_size
    copy = twin(model)
    copy_opt = FlashAdamW(copy.parameters(), lr=3e-3)
    copy_opt.load_state_dict(state)
    rest = list(stream)[:2]
    before = {n: reconstruct(p.detach(), opt.state[p]["weight_correction"]) for n, p in model.named_parameters()}
    _continue(model, opt, iter(rest))
    _continue(copy, copy_opt, iter(rest))
    steps_a, steps_b = [], []
    for (name, a), b in zip(model.named_parameters(), copy.parameters()):
        steps_a.append(reconstruct(a.detach(), opt.state[a]["weight_correction"]) - before[name])
        steps_b.append(reconstruct(b.detach(), copy_opt.state[b]["weight_correction"]) - before[name])
    step_a, step_b = torch.cat([s.reshape(-1) for s in steps_a]), torch.cat([s.reshape(-1) for s in steps_b])
    # requantizing bf16 states moves some codes by a level: the same size as 8-bit storage noise itself
    assert float((step_a - step_b).norm() / step_a.norm()) < 0.05


def test_a_torch_adamw_state_dict_loads_into_flash_adamw(data_dir):
    batches, vocab = char_batches(data_dir)
    model = seeded_char_lm(vocab)
    torch_opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    lm_loss(model, next(batches())).backward()
    torch_opt.step()
    flash_opt = FlashAdamW(model.parameters(), lr=1e-3)
    flash_opt.load_state_dict(torch_opt.state_dict())
    param = model.tokens.weight
    assert flash_opt.state[param]["step"] == 1
    restored = flash_opt._read_state(flash_opt.state[param], "exp_avg", "signed", param.numel())
    expected = torch_opt.state[param]["exp_avg"].reshape(-1)
    assert float((restored - expected).norm() / expected.norm()) < 0.02


def test_fp32_model_state_dict_round_trips(data_dir):
    model, opt, _ = _trained(data_dir)
    full = opt.get_fp32_model_state_dict(model)
    assert all(v.dtype == torch.float32 for v in full.values())
    weight = model.blocks[0].qkv.weight
    rebuilt = reconstruct(weight.detach(), opt.state[weight]["weight_correction"])
    assert torch.equal(full["blocks.0.qkv.weight"], rebuilt)
    assert not torch.equal(full["blocks.0.qkv.weight"], weight.detach().float())  # the correction carries real bits
    fresh = cast_model(seeded_char_lm(65, seed=1))
    fresh_opt = FlashAdamW(fresh.parameters(), lr=1e-3)
    fresh_opt.set_fp32_model_state_dict(fresh, full)
    again = fresh_opt.get_fp32_model_state_dict(fresh)
    exact = total = 0
    for name in full:
        # bit-exact except where a value sits just below a power of two, where the bf16 rounding can tie;
        # norm weights cluster near 1.0, so count exactness over the whole model, not per tensor
        assert torch.allclose(again[name], full[name], rtol=2**-15, atol=0), name
        exact += int((again[name] == full[name]).sum())
        total += full[name].numel()
    assert exact / total > 0.999
    plain = seeded_char_lm(65, seed=2)  # an ordinary fp32 model reads it directly
    plain.load_state_dict(full)
    with pytest.raises(CheckpointError, match="does not fit"):
        fresh_opt.set_fp32_model_state_dict(fresh, {"nope": torch.zeros(1)})


def test_packed_and_chunked_paths_give_identical_results(data_dir, monkeypatch):
    """Small tensors are stepped packed together, large ones in chunks: the layout must not matter."""
    from hasten.optim.flash import base

    def train(limit: int, chunk: int):
        monkeypatch.setattr(base, "BUCKET_LIMIT", limit)
        monkeypatch.setattr(base, "CHUNK", chunk)
        model, opt, _ = _trained(data_dir, steps=2)
        states = [t for s in opt.state.values() for k, t in s.items() if k != "step"]
        return [p.detach() for p in model.parameters()] + states

    packed = train(1 << 14, 1 << 20)  # every tensor of the tiny model is packed
    chunked = train(0, 96)  # none is packed; each is stepped in chunks of 96 values
    assert all(torch.equal(a, b) for a, b in zip(packed, chunked))


def test_fused_none_stays_eager_on_cpu_and_false_never_compiles(monkeypatch):
    from hasten.optim.flash.fused import FUSED_ENV, resolve_fused

    monkeypatch.delenv(FUSED_ENV, raising=False)
    assert resolve_fused(None, "cpu") is False  # the compiled CPU update measured slower than eager
    assert resolve_fused(False, "cuda") is False
    monkeypatch.setenv(FUSED_ENV, "0")
    assert resolve_fused(None, "cuda") is False
