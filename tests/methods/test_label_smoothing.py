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


def with_ignored(targets: torch.Tensor, every: int = 3) -> torch.Tensor:
    """Some positions set to -100, torch's default ignore_index (padding in language models)."""
    masked = targets.clone()
    masked.view(-1)[::every] = -100
    return masked


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("layout", ["(N, C)", "(N, C, T)", "(N, T, C)", "flattened"])
def test_ignored_targets_match_torch(reduction, layout):
    torch.manual_seed(3)
    n, c, t, eps = 4, 11, 6, 0.2
    if layout == "(N, C)":
        logits, y = torch.randn(n, c), with_ignored(torch.randint(0, c, (n,)))
        ours, torch_logits, torch_y = label_smoothing_loss(logits, y, eps, reduction=reduction), logits, y
    else:
        torch_logits, torch_y = torch.randn(n, c, t), with_ignored(torch.randint(0, c, (n, t)))
        if layout == "(N, C, T)":
            ours = label_smoothing_loss(torch_logits, torch_y, eps, reduction=reduction)
        elif layout == "(N, T, C)":
            ours = label_smoothing_loss(torch_logits.transpose(1, 2), torch_y, eps, reduction=reduction)
        else:  # what hasten's default loss does: (N*T, C) against (N*T,)
            torch_logits, torch_y = torch_logits.transpose(1, 2).reshape(-1, c), torch_y.reshape(-1)
            ours = label_smoothing_loss(torch_logits, torch_y, eps, reduction=reduction)
    expected = F.cross_entropy(torch_logits, torch_y, label_smoothing=eps, ignore_index=-100, reduction=reduction)
    assert ours.shape == expected.shape
    assert torch.allclose(ours, expected, atol=1e-5)


def test_the_wrapped_run_loss_ignores_padding_like_torch():
    torch.manual_seed(4)
    logits, y = torch.randn(3, 7, 12), with_ignored(torch.randint(0, 12, (3, 7)), every=2)
    expected = F.cross_entropy(logits.reshape(-1, 12), y.reshape(-1), label_smoothing=0.1)
    state, engine = bare_state([LabelSmoothing(0.1)])
    fire(engine, Event.INIT)  # wraps the Trainer's default loss, as a run does
    assert torch.allclose(state.loss_fn(logits, y), expected, atol=1e-6)
    pad = with_ignored(torch.randint(1, 12, (3, 7)), every=2).clamp(min=0)  # another ignore_index: 0
    expected = F.cross_entropy(logits.reshape(-1, 12), pad.reshape(-1), label_smoothing=0.1, ignore_index=0)
    loss = LabelSmoothedLoss(
        lambda o, t: F.cross_entropy(o.reshape(-1, 12), t.reshape(-1), ignore_index=0), 0.1, ignore_index=0
    )
    assert torch.allclose(loss(logits, pad), expected, atol=1e-6)


def test_smoothed_labels_of_ignored_targets_add_no_loss():
    torch.manual_seed(5)
    logits, y = torch.randn(8, 5), with_ignored(torch.randint(0, 5, (8,)))
    soft = smooth_labels(logits, y, 0.1)
    assert torch.equal(soft[y == -100], torch.zeros(int((y == -100).sum()), 5))
    expected = F.cross_entropy(logits, y, label_smoothing=0.1, reduction="sum")
    assert torch.allclose(F.cross_entropy(logits, soft, reduction="sum"), expected, atol=1e-5)
