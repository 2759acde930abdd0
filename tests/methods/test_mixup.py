import pytest
import torch
import torch.nn.functional as F

from hasten.core.composition import check_composition
from hasten.core.event import Event
from hasten.errors import ConfigError, ConflictError
from hasten.methods import build_method
from hasten.methods.cutmix import CutMix
from hasten.methods.mixup import MixUp, mixed_loss, mixup_batch, mixup_targets
from hasten.trainer.trainer import default_loss
from tests.harness import TinyConvNet, assert_resumes_exactly, cifar_slice, image_trainer_factory, normalize_images
from tests.methods.data_helpers import FedRecorder, bare_state, fire


@pytest.fixture
def images(data_dir):
    x, y = cifar_slice(str(data_dir), 64)
    return normalize_images(x[:16]), y[:16]


def test_mixup_batch_is_the_stated_convex_combination(images):
    x, y = images
    perm = torch.arange(15, -1, -1)
    mixed, y_perm, lam = mixup_batch(x, y, mixing=0.3, permutation=perm)
    assert lam == 0.3
    assert torch.allclose(mixed[0], 0.3 * x[0] + 0.7 * x[15])
    assert torch.allclose(mixed, 0.3 * x + 0.7 * x.flip(0))
    assert torch.equal(y_perm, y.flip(0))


def test_drawn_mixing_is_beta_distributed(images):
    x, y = images
    torch.manual_seed(0)
    draws = torch.tensor([mixup_batch(x, y, alpha=0.2)[2] for _ in range(400)])
    assert ((draws > 0) & (draws < 1)).all()
    # Beta(0.2, 0.2) has mean 1/2 and variance 1/(4 * 1.4) = 0.179: mass piles up near 0 and 1.
    assert abs(float(draws.mean()) - 0.5) < 0.06
    assert abs(float(draws.var()) - 1 / 5.6) < 0.03


def test_mixed_loss_equals_the_formula_and_soft_target_cross_entropy():
    torch.manual_seed(1)
    logits, y, y_perm = torch.randn(8, 10), torch.randint(0, 10, (8,)), torch.randint(0, 10, (8,))
    log_p = F.log_softmax(logits, dim=-1)
    by_hand = -(0.3 * log_p[torch.arange(8), y] + 0.7 * log_p[torch.arange(8), y_perm]).mean()
    loss = mixed_loss(default_loss, logits, y, y_perm, 0.3)
    assert torch.allclose(loss, by_hand, atol=1e-6)
    soft = mixup_targets(y, y_perm, 0.3, 10)
    assert torch.allclose(soft.sum(dim=1), torch.ones(8))
    assert torch.allclose(loss, F.cross_entropy(logits, soft), atol=1e-6)


def test_algorithm_matches_functional_form_on_same_rng(images):
    x, y = images
    model = TinyConvNet().eval()
    state, engine = bare_state([MixUp(alpha=0.4)], model=model, batch=(x, y))
    torch.manual_seed(7)
    fire(engine, Event.BEFORE_FORWARD)
    torch.manual_seed(7)
    expected_x, y_perm, lam = mixup_batch(x, y, alpha=0.4)
    assert torch.equal(state.inputs, expected_x) and torch.equal(state.targets, y)
    assert state.extra["mixup"]["mixing"] == lam
    state.outputs = model(state.inputs)
    fire(engine, Event.BEFORE_LOSS)
    loss = state.loss_fn(state.outputs, state.targets)
    fire(engine, Event.AFTER_LOSS)
    assert torch.allclose(loss, mixed_loss(default_loss, state.outputs, y, y_perm, lam))
    assert state.loss_fn is default_loss, "the run's own loss must be back after AFTER_LOSS"


def test_closure_optimizers_replay_the_mixed_batch_and_loss(data_dir):
    """SAM-like optimizers recompute the loss in a closure: it must be the mixed loss on the mixed
    inputs (at unchanged weights it then equals the step's own loss), not the clean batch's."""
    closure_losses, recorder = [], FedRecorder()

    class ClosureSGD(torch.optim.SGD):
        requires_closure = True

        def step(self, closure=None):
            with torch.enable_grad():
                closure_losses.append(float(closure()))
            return super().step()

    make = image_trainer_factory(data_dir, algorithms=lambda: [MixUp(alpha=1.0)], callbacks=[recorder])
    make(max_duration="3ba", optimizer=lambda m: ClosureSGD(m.parameters(), lr=0.01), grad_accum=2).fit()
    per_step = [sum(recorder.losses[i : i + 2]) / 2 for i in (0, 2, 4)]
    assert closure_losses == pytest.approx(per_step, rel=1e-5)


def test_mixup_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, algorithms=lambda: [MixUp(alpha=0.4)]), tmp_path)


@pytest.mark.parametrize("order", [0, 1])
def test_mixup_and_cutmix_conflict_names_both(order):
    pair = [MixUp(), CutMix()]
    with pytest.raises(ConflictError) as info:
        check_composition(pair if order == 0 else pair[::-1])
    message = str(info.value)
    assert "'mixup'" in message and "'cutmix'" in message and "targets" in message


def test_trainer_refuses_mixup_with_cutmix_before_training(data_dir):
    make = image_trainer_factory(data_dir, algorithms=lambda: [MixUp(), CutMix()])
    with pytest.raises(ConflictError, match="mixup"):
        make()


def test_mixup_on_token_ids_is_one_clear_error():
    with pytest.raises(ConfigError, match="mixup mixes input values"):
        mixup_batch(torch.randint(0, 50, (4, 16)), torch.randint(0, 50, (4, 16)))


def test_bad_alpha_is_refused_from_the_cli_spelling():
    with pytest.raises(ConfigError, match="alpha must be > 0"):
        build_method("mixup:alpha=0")
