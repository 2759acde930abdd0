import pytest
import torch
import torch.nn.functional as F

from hasten.core.composition import check_composition
from hasten.core.event import Event
from hasten.methods.cutmix import CutMix, cutmix_batch
from hasten.methods.label_smoothing import LabelSmoothedLoss, LabelSmoothing, label_smoothing_loss, smooth_labels
from hasten.methods.mixup import MixUp, mixup_batch
from hasten.trainer.trainer import default_loss
from tests.harness import TinyConvNet, assert_resumes_exactly, cifar_slice, image_trainer_factory, normalize_images
from tests.methods.data_helpers import bare_state, fire


def test_smoothed_labels_are_the_closed_form():
    targets = torch.tensor([2, 0])
    soft = smooth_labels(torch.zeros(2, 5), targets, smoothing=0.1)
    assert torch.allclose(soft[0], torch.tensor([0.02, 0.02, 0.92, 0.02, 0.02]))
    assert torch.allclose(soft.sum(dim=1), torch.ones(2))


def test_loss_equals_the_closed_form_and_torch():
    torch.manual_seed(0)
    logits, y, eps, classes = torch.randn(6, 10), torch.randint(0, 10, (6,)), 0.2, 10
    log_p = F.log_softmax(logits, dim=-1)
    # -(1 - eps + eps/K) log p_y - (eps/K) sum_{k != y} log p_k, averaged over the batch
    rows = torch.arange(6)
    others = log_p.sum(dim=1) - log_p[rows, y]
    closed = (-(1 - eps + eps / classes) * log_p[rows, y] - (eps / classes) * others).mean()
    loss = label_smoothing_loss(logits, y, eps)
    assert torch.allclose(loss, closed, atol=1e-6)
    assert torch.allclose(loss, F.cross_entropy(logits, y, label_smoothing=eps), atol=1e-6)


def test_sequence_outputs_smooth_every_position():
    torch.manual_seed(1)
    logits, y = torch.randn(3, 7, 12), torch.randint(0, 12, (3, 7))
    expected = F.cross_entropy(logits.reshape(-1, 12), y.reshape(-1), label_smoothing=0.1)
    assert torch.allclose(LabelSmoothedLoss(default_loss, 0.1)(logits, y), expected, atol=1e-6)


@pytest.mark.parametrize("mixer", ["mixup", "cutmix"])
def test_composes_with_label_mixing_as_the_smoothed_mixed_distribution(data_dir, mixer):
    """Mixing interpolates the loss; smoothing is linear in the target, so the Trainer's loss must
    equal cross-entropy against smooth(lam * onehot(y) + (1 - lam) * onehot(y_perm))."""
    x, y = cifar_slice(str(data_dir), 64)
    x, y = normalize_images(x[:16]), y[:16]
    mixing = MixUp(alpha=1.0) if mixer == "mixup" else CutMix(alpha=1.0)
    model, eps = TinyConvNet().eval(), 0.1
    state, engine = bare_state([LabelSmoothing(eps), mixing], model=model, batch=(x, y))
    fire(engine, Event.INIT)
    torch.manual_seed(5)
    fire(engine, Event.BEFORE_FORWARD)
    torch.manual_seed(5)
    if mixer == "mixup":
        _, y_perm, lam = mixup_batch(x, y, alpha=1.0)
    else:
        _, y_perm, lam, _ = cutmix_batch(x, y, alpha=1.0)
    state.outputs = model(state.inputs)
    fire(engine, Event.BEFORE_LOSS)
    loss = state.loss_fn(state.outputs, state.targets)
    fire(engine, Event.AFTER_LOSS)
    mixed = lam * F.one_hot(y, 10).float() + (1 - lam) * F.one_hot(y_perm, 10).float()
    target = (1 - eps) * mixed + eps / 10
    assert 0 < lam < 1
    assert torch.allclose(loss, F.cross_entropy(state.outputs, target), atol=1e-6)
    check_composition([LabelSmoothing(), mixing])  # and the composition is allowed


def test_algorithm_matches_functional_form():
    torch.manual_seed(2)
    logits, y = torch.randn(5, 10), torch.randint(0, 10, (5,))
    state, engine = bare_state([LabelSmoothing(0.15)])
    fire(engine, Event.INIT, Event.INIT)  # a second INIT must not smooth twice
    assert torch.equal(state.loss_fn(logits, y), label_smoothing_loss(logits, y, 0.15))
    assert state.loss_fn.base is default_loss


def test_label_smoothing_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, algorithms=lambda: [LabelSmoothing(0.1)]), tmp_path)


def test_smoothing_out_of_range_is_refused():
    with pytest.raises(ValueError, match="smoothing must be in"):
        LabelSmoothing(1.0)
