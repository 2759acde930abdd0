"""Gradient release: identical results to normal stepping, gradients freed, clear refusals."""

import os

import pytest
import torch
import torch.distributed as dist

from hasten.errors import ConfigError
from hasten.optim.flash import FlashAdamW, FlashLion, FlashSGD, cast_model, enable_gradient_release, memory_report
from tests.optim.flash.tiny_models import char_batches, lm_loss, seeded_char_lm, twin

OPTIMIZERS = {
    "adamw": lambda params: FlashAdamW(params, lr=3e-3, weight_decay=0.1),
    "sgd": lambda params: FlashSGD(params, lr=0.3, momentum=0.9, nesterov=True),
    "lion": lambda params: FlashLion(params, lr=1e-3, weight_decay=0.1),
}


def _train(model, optimizer, batches, steps: int = 4, check=None) -> None:
    stream = batches()
    for _ in range(steps):
        lm_loss(model, next(stream)).backward()
        if check:
            check(model)
        optimizer.step()  # no-ops under release: an unchanged loop keeps working
        optimizer.zero_grad()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_release_gives_bit_identical_weights_and_states(data_dir, name):
    batches, vocab = char_batches(data_dir)
    normal = cast_model(seeded_char_lm(vocab))
    released = twin(normal)
    normal_opt, released_opt = OPTIMIZERS[name](normal.parameters()), OPTIMIZERS[name](released.parameters())
    handle = enable_gradient_release(released, released_opt)

    def no_gradients_left(model):
        assert all(p.grad is None for p in model.parameters())

    _train(normal, normal_opt, batches)
    _train(released, released_opt, batches, check=no_gradients_left)
    for (label, a), b in zip(normal.named_parameters(), released.parameters()):
        assert torch.equal(a, b), label
    for a, b in zip(normal_opt.state.values(), released_opt.state.values()):
        assert a["step"] == b["step"] == 4
        assert all(torch.equal(a[k], b[k]) for k in a if k != "step")
    handle.remove()
    assert not released_opt.gradient_release_active
    lm_loss(released, next(batches())).backward()
    assert all(p.grad is not None for p in released.parameters())  # normal stepping is back


def test_release_frees_the_gradient_bytes(data_dir):
    batches, vocab = char_batches(data_dir)
    model = cast_model(seeded_char_lm(vocab))
    optimizer = FlashAdamW(model.parameters(), lr=1e-3)
    enable_gradient_release(model, optimizer)
    lm_loss(model, next(batches())).backward()
    report = memory_report(model, optimizer)
    assert "gradients" not in report.bytes
    assert report.bytes_per_param <= 5.2


def test_refusals_name_the_problem_and_the_way_out():
    model = cast_model(seeded_char_lm(65))
    with pytest.raises(ConfigError, match="needs a FlashOptimizer.*use FlashAdamW"):
        enable_gradient_release(model, torch.optim.AdamW(model.parameters()))
    optimizer = FlashAdamW(model.parameters())
    with pytest.raises(ConfigError, match="cannot accumulate gradients.*grad_accum=1"):
        enable_gradient_release(model, optimizer, grad_accum=4)
    with pytest.raises(ConfigError, match="global gradient norm.*drop clipping"):
        enable_gradient_release(model, optimizer, grad_clip_norm=1.0)
    enable_gradient_release(model, optimizer)
    with pytest.raises(ConfigError, match="already enabled"):
        enable_gradient_release(model, optimizer)
    with pytest.raises(ConfigError, match="none of the model's parameters"):
        enable_gradient_release(seeded_char_lm(65), FlashAdamW(cast_model(seeded_char_lm(65)).parameters()))


def test_ddp_is_refused(tmp_path):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        model = cast_model(seeded_char_lm(65))
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        with pytest.raises(ConfigError, match="DistributedDataParallel"):
            enable_gradient_release(ddp, FlashAdamW(ddp.parameters()))
    finally:
        dist.destroy_process_group()
