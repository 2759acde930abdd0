"""Short real-data runs: each Flash optimizer's loss curve tracks its fp32 torch counterpart."""

import itertools

import pytest
import torch

from hasten.optim.flash import FlashAdam, FlashAdamW, FlashLion, FlashSGD, FlashSGDW, cast_model
from tests.harness import TinyConvNet
from tests.optim.flash.reference import ReferenceLion, ReferenceSGDW
from tests.optim.flash.tiny_models import char_batches, image_batches, lm_loss, seeded_char_lm, twin

LM_CASES = {
    "adamw": (torch.optim.AdamW, FlashAdamW, dict(lr=3e-3, weight_decay=0.1)),
    "adam": (torch.optim.Adam, FlashAdam, dict(lr=3e-3)),
    "lion": (ReferenceLion, FlashLion, dict(lr=1e-3, weight_decay=0.1)),
    "sgd": (torch.optim.SGD, FlashSGD, dict(lr=0.3, momentum=0.9, nesterov=True)),
    "sgdw": (ReferenceSGDW, FlashSGDW, dict(lr=0.3, momentum=0.9, weight_decay=1e-3)),
}
STEPS = 30


def _curve(model, optimizer, batches, loss_fn, steps: int = STEPS) -> list[float]:
    losses = []
    stream = itertools.cycle(list(batches()))
    for _ in range(steps):
        loss = loss_fn(model, next(stream))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    return losses


def _compare(reference: list[float], flash: list[float]) -> tuple[float, float]:
    gaps = [abs(a - b) for a, b in zip(reference, flash)]
    tail = sum(flash[-5:]) / 5 - sum(reference[-5:]) / 5
    return sum(gaps) / len(gaps), tail


@pytest.mark.parametrize("case", sorted(LM_CASES))
def test_flash_tracks_torch_on_tiny_shakespeare(data_dir, case):
    torch_cls, flash_cls, kwargs = LM_CASES[case]
    batches, vocab = char_batches(data_dir)
    reference_model = seeded_char_lm(vocab)
    flash_model = cast_model(twin(reference_model))
    reference = _curve(reference_model, torch_cls(reference_model.parameters(), **kwargs), batches, lm_loss)
    flash = _curve(flash_model, flash_cls(flash_model.parameters(), **kwargs), batches, lm_loss)
    assert reference[-1] < reference[0] - 1.0  # the reference really learns in this budget (4.3 -> ~2.6)
    mean_gap, tail_gap = _compare(reference, flash)
    assert mean_gap < 0.06 and abs(tail_gap) < 0.06, (mean_gap, tail_gap)


def test_flash_sgd_tracks_torch_on_cifar10_with_batch_norm(data_dir):
    batches = image_batches(data_dir, batch_size=16, n=256)
    torch.manual_seed(0)
    reference_model = TinyConvNet()
    flash_model = cast_model(twin(reference_model))  # batch norm stays fp32 inside a bf16 net

    def loss_fn(model, batch):
        return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])

    def full_loss(model) -> float:  # on all 256 images, in eval mode (running statistics)
        model.eval()
        with torch.no_grad():
            losses = [float(loss_fn(model, batch)) for batch in batches()]
        model.train()
        return sum(losses) / len(losses)

    before = full_loss(reference_model)
    kwargs = dict(lr=0.05, momentum=0.9, weight_decay=5e-4)  # three passes over the 256 images
    reference = _curve(reference_model, torch.optim.SGD(reference_model.parameters(), **kwargs), batches, loss_fn, 48)
    flash = _curve(flash_model, FlashSGD(flash_model.parameters(), **kwargs), batches, loss_fn, 48)
    after_reference, after_flash = full_loss(reference_model), full_loss(flash_model)
    assert after_reference < before - 0.1, (before, after_reference)  # it learns
    mean_gap, _ = _compare(reference, flash)
    assert mean_gap < 0.05 and abs(after_flash - after_reference) < 0.05, (mean_gap, after_flash, after_reference)
