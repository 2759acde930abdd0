import pytest
import torch
import torch.nn.functional as F

from hasten.core.composition import check_composition
from hasten.core.event import Event
from hasten.errors import ConflictError
from hasten.methods.label_smoothing import LabelSmoothedLoss
from hasten.methods.progressive_resizing import ProgressiveResizing
from hasten.methods.selective_backprop import (
    SelectiveBackprop,
    per_sample_loss,
    select_by_loss,
    select_using_loss,
    should_selective_backprop,
)
from hasten.methods.seq_length_warmup import SeqLengthWarmup
from hasten.trainer.trainer import default_loss
from tests.harness import TinyConvNet, assert_resumes_exactly, cifar_slice, image_trainer_factory, normalize_images
from tests.methods.data_helpers import FedRecorder, bare_state, fire


@pytest.fixture
def images(data_dir):
    x, y = cifar_slice(str(data_dir), 64)
    return normalize_images(x[:32]), y[:32]


def test_window_and_interrupt_pick_the_stated_steps():
    chosen = [k for k in range(20) if should_selective_backprop(k / 20, k, start=0.5, end=0.9, interrupt=2)]
    assert chosen == [10, 12, 14, 16]  # inside [0.5, 0.9), every second step a plain one
    assert [k for k in range(20) if should_selective_backprop(k / 20, k, 0.5, 0.9, interrupt=0)] == list(range(10, 18))


def test_topk_keeps_exactly_the_highest_loss_fraction(images):
    x, y = images
    model = TinyConvNet().eval()
    with torch.no_grad():
        losses = F.cross_entropy(model(x), y, reduction="none")
    kept_x, kept_y = select_using_loss(x, y, model, default_loss, keep=0.25, mode="topk")
    highest = torch.topk(losses, 8).indices.sort().values
    assert torch.equal(kept_x, x[highest]) and torch.equal(kept_y, y[highest])


def test_sampling_keeps_the_fraction_and_favours_high_losses():
    """The paper's rule: keep with weight percentile**(1/keep - 1); here keep=0.25, weights p**3."""
    losses = torch.linspace(0.0, 1.0, 16)
    torch.manual_seed(0)
    counts = torch.zeros(16)
    for _ in range(1000):
        chosen = select_by_loss(losses, keep=0.25, mode="sample")
        assert len(chosen) == 4 and len(set(chosen.tolist())) == 4
        counts[chosen] += 1
    frequency = counts / 1000
    assert frequency[-4:].mean() > 0.55  # the top quarter is kept most of the time (0.63 here)
    assert frequency[:4].mean() < 0.01  # percentile**3 almost never picks the bottom quarter
    ranks = torch.arange(16, dtype=torch.float)
    order_agreement = torch.corrcoef(torch.stack([frequency.argsort().argsort().float(), ranks]))[0, 1]
    assert order_agreement > 0.95


def test_per_sample_loss_matches_unreduced_cross_entropy():
    torch.manual_seed(1)
    logits, y = torch.randn(6, 10), torch.randint(0, 10, (6,))
    expected = F.cross_entropy(logits, y, reduction="none")
    assert torch.allclose(per_sample_loss(default_loss, logits, y), expected, atol=1e-6)
    assert torch.allclose(per_sample_loss(F.cross_entropy, logits, y), expected, atol=1e-6)
    smoothed = per_sample_loss(LabelSmoothedLoss(default_loss, 0.1), logits, y)
    assert torch.allclose(smoothed, F.cross_entropy(logits, y, reduction="none", label_smoothing=0.1), atol=1e-6)
    sequences, tokens = torch.randn(3, 5, 10), torch.randint(0, 10, (3, 5))
    by_token = F.cross_entropy(sequences.reshape(-1, 10), tokens.reshape(-1), reduction="none").view(3, 5)
    assert torch.allclose(per_sample_loss(default_loss, sequences, tokens), by_token.mean(dim=1), atol=1e-6)


def test_algorithm_matches_functional_form_on_same_rng(images):
    x, y = images
    model = TinyConvNet()
    state, engine = bare_state([SelectiveBackprop()], model=model, max_duration="10ba", batch=(x, y))
    state.timestamp.batch = 6  # progress 0.6, an SB step
    torch.manual_seed(2)
    fire(engine, Event.BATCH_START)
    torch.manual_seed(2)
    expected_x, expected_y = select_using_loss(x, y, model, default_loss, keep=0.5)
    assert state.inputs.shape[0] == 16
    assert torch.equal(state.inputs, expected_x) and torch.equal(state.targets, expected_y)


def test_trainer_backpropagates_half_batches_on_the_scheduled_steps(data_dir):
    recorder = FedRecorder()
    make = image_trainer_factory(data_dir, algorithms=lambda: [SelectiveBackprop()], callbacks=[recorder])
    result = make(max_duration="10ba").fit()
    assert [len(x) for x in recorder.inputs] == [32, 32, 32, 32, 32, 32, 16, 32, 16, 32]
    assert result.samples == 320  # samples read count the whole batch


def test_selective_backprop_resumes_exactly(tmp_path, data_dir):
    make = image_trainer_factory(data_dir, algorithms=lambda: [SelectiveBackprop(start=0.25, end=1.0)])
    assert_resumes_exactly(make, tmp_path)


@pytest.mark.parametrize("shape_changer", [ProgressiveResizing, SeqLengthWarmup])
def test_shape_changing_methods_are_refused_naming_both(shape_changer, data_dir):
    with pytest.raises(ConflictError) as info:
        check_composition([shape_changer(), SelectiveBackprop()])
    message = str(info.value)
    assert "'selective_backprop'" in message and f"'{shape_changer.name}'" in message
    make = image_trainer_factory(data_dir, algorithms=lambda: [SelectiveBackprop(), shape_changer()])
    with pytest.raises(ConflictError, match="selective_backprop"):
        make()
