import pytest
import torch
import torch.nn.functional as F

from hasten.core.event import Event
from hasten.errors import ConfigError
from hasten.methods.cutmix import CutMix, cutmix_batch, cutmix_bbox
from hasten.methods.mixup import mixed_loss
from hasten.trainer.trainer import default_loss
from tests.harness import TinyConvNet, assert_resumes_exactly, cifar_slice, image_trainer_factory, normalize_images
from tests.methods.data_helpers import bare_state, fire


@pytest.fixture
def images(data_dir):
    x, y = cifar_slice(str(data_dir), 64)
    return normalize_images(x[:16]), y[:16]


def test_box_comes_from_the_paired_image_and_lam_is_the_untouched_share(images):
    x, y = images
    perm = torch.roll(torch.arange(16), 1)
    cut, y_perm, lam, bbox = cutmix_batch(x, y, bbox=(4, 8, 20, 16), permutation=perm)
    assert bbox == (4, 8, 20, 16)
    assert torch.equal(cut[:, :, 4:20, 8:16], x[perm, :, 4:20, 8:16])
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[4:20, 8:16] = False
    assert torch.equal(cut[:, :, outside], x[:, :, outside])
    assert lam == 1 - (16 * 8) / (32 * 32)
    assert torch.equal(y_perm, y[perm])
    changed = (cut != x).any(dim=1)  # pixels that differ from the original image
    assert float(changed.float().mean()) <= 1 - lam + 1e-9


def test_box_side_is_sqrt_of_one_minus_lambda_and_clipped_to_the_image():
    torch.manual_seed(0)
    for _ in range(200):
        top, left, bottom, right = cutmix_bbox(32, 32, 0.75)  # cut ratio sqrt(0.25) = 0.5 -> 16 px sides
        assert 0 <= top <= bottom <= 32 and 0 <= left <= right <= 32
        assert bottom - top <= 16 and right - left <= 16
        if 8 <= (top + bottom) // 2 <= 24 and top > 0 and bottom < 32:
            assert bottom - top == 16


def test_cutmix_loss_is_the_area_weighted_mix(images):
    x, y = images
    torch.manual_seed(3)
    cut, y_perm, lam, _ = cutmix_batch(x, y, alpha=1.0)
    logits = TinyConvNet().eval()(cut)
    log_p = F.log_softmax(logits, dim=-1)
    rows = torch.arange(16)
    by_hand = -(lam * log_p[rows, y] + (1 - lam) * log_p[rows, y_perm]).mean()
    assert torch.allclose(mixed_loss(default_loss, logits, y, y_perm, lam), by_hand, atol=1e-6)


def test_algorithm_matches_functional_form_on_same_rng(images):
    x, y = images
    model = TinyConvNet().eval()
    state, engine = bare_state([CutMix(alpha=1.0)], model=model, batch=(x, y))
    torch.manual_seed(11)
    fire(engine, Event.BEFORE_FORWARD)
    torch.manual_seed(11)
    expected, y_perm, lam, _ = cutmix_batch(x, y, alpha=1.0)
    assert torch.equal(state.inputs, expected)
    state.outputs = model(state.inputs)
    fire(engine, Event.BEFORE_LOSS)
    loss = state.loss_fn(state.outputs, state.targets)
    fire(engine, Event.AFTER_LOSS)
    assert torch.allclose(loss, mixed_loss(default_loss, state.outputs, y, y_perm, lam))
    assert state.loss_fn is default_loss


def test_cutmix_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, algorithms=lambda: [CutMix()]), tmp_path)


def test_cutmix_needs_images():
    with pytest.raises(ConfigError, match="cutmix needs image batches"):
        cutmix_batch(torch.randn(4, 10), torch.zeros(4, dtype=torch.long))
