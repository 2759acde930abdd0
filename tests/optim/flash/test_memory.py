"""memory_report: bytes per parameter measured from tensor storage on a real model after a real step."""

import pytest
import torch

from hasten.optim.flash import FlashAdamW, FlashLion, FlashSGD, cast_model, checkpoint_bytes, memory_report
from tests.harness import TinyConvNet
from tests.optim.flash.tiny_models import char_batches, lm_loss, seeded_char_lm


def _after_one_step(data_dir, make_optimizer, cast: bool = True):
    batches, vocab = char_batches(data_dir)
    model = seeded_char_lm(vocab)
    if cast:
        model = cast_model(model)
    optimizer = make_optimizer(model.parameters())
    lm_loss(model, next(batches())).backward()
    optimizer.step()
    return model, optimizer


def test_torch_adamw_is_16_bytes_per_param(data_dir):
    model, optimizer = _after_one_step(data_dir, lambda p: torch.optim.AdamW(p, lr=1e-3), cast=False)
    report = memory_report(model, optimizer)
    per = report.per_param
    assert per["weights"] == per["gradients"] == per["state:exp_avg"] == per["state:exp_avg_sq"] == 4.0
    assert 16.0 <= report.bytes_per_param < 16.01  # plus one 4-byte step counter per tensor
    assert 12.0 <= report.checkpoint_bytes_per_param < 12.01


def test_flash_adamw_is_at_most_7_2_bytes_per_param(data_dir):
    model, optimizer = _after_one_step(data_dir, lambda p: FlashAdamW(p, lr=1e-3))
    report = memory_report(model, optimizer)
    per = report.per_param
    assert per["weights"] == 2.0 and per["gradients"] == 2.0 and per["corrections"] == 1.0
    assert 1.0 <= per["state:exp_avg"] < 1.02 and 1.0 <= per["state:exp_avg_sq"] < 1.02  # padding to groups of 32
    assert 0.125 <= per["scales"] < 0.13  # one 2-byte scale per 32 values, two states
    assert report.bytes_per_param <= 7.2
    assert report.checkpoint_bytes_per_param <= 5.2
    assert sum(report.bytes.values()) == report.total_bytes


@pytest.mark.parametrize("make", [lambda p: FlashSGD(p, lr=0.1, momentum=0.9), lambda p: FlashLion(p, lr=1e-4)])
def test_flash_sgd_and_lion_are_at_most_6_2_bytes_per_param(data_dir, make):
    model, optimizer = _after_one_step(data_dir, make)
    assert memory_report(model, optimizer).bytes_per_param <= 6.2


def test_32_bit_master_weights_cost_one_more_byte(data_dir):
    model, optimizer = _after_one_step(data_dir, lambda p: FlashAdamW(p, lr=1e-3, master_weight_bits=32))
    report = memory_report(model, optimizer)
    assert report.per_param["corrections"] == 2.0 and report.bytes_per_param <= 8.2


def test_tied_weights_are_counted_once(data_dir):
    model = seeded_char_lm(65)
    model.head.weight = model.tokens.weight  # weight tying: one storage, two names
    report = memory_report(model, None)
    unique = sum(p.numel() for p in model.parameters())
    assert report.params == unique and report.bytes["weights"] == 4 * unique
    assert checkpoint_bytes(model, None) == 4 * unique


def test_buffers_are_reported_apart_from_parameters():
    model = cast_model(TinyConvNet())
    report = memory_report(model, FlashSGD(model.parameters(), lr=0.1, momentum=0.9))
    running_stats = sum(b.untyped_storage().nbytes() for b in model.buffers())
    assert report.buffer_bytes == running_stats > 0
    assert "gradients" not in report.bytes and "no gradients allocated at report time" in report.notes
    assert "total" in report.format() and "checkpoint" in report.format()
    plain = report.to_dict()
    assert plain["params"] == report.params and set(plain["by_category"]) == set(report.bytes)
