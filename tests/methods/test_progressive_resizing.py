import pytest
import torch
import torch.nn.functional as F

from hasten.core.composition import check_composition
from hasten.core.event import Event
from hasten.errors import ConfigError, ConflictError
from hasten.methods.progressive_resizing import (
    ProgressiveResizing,
    progressive_resizing_scale,
    resize_batch,
    scaled_side,
)
from hasten.methods.selective_backprop import SelectiveBackprop
from tests.harness import assert_resumes_exactly, cifar_slice, image_trainer_factory, normalize_images
from tests.methods.data_helpers import FedRecorder, bare_state, fire


@pytest.fixture
def images(data_dir):
    x, y = cifar_slice(str(data_dir), 64)
    return normalize_images(x[:8]), y[:8]


def test_scale_schedule_is_flat_then_linear_then_full():
    def scale(progress: float) -> float:
        return progressive_resizing_scale(progress, initial_scale=0.5, delay_fraction=0.5, finetune_fraction=0.2)

    assert scale(0.0) == 0.5 and scale(0.49) == 0.5
    assert scale(0.65) == pytest.approx(0.75)  # halfway up the 0.5 -> 0.8 ramp
    assert scale(0.8) == 1.0 and scale(0.95) == 1.0
    assert scaled_side(32, 0.6667, 4) == 20 and scaled_side(32, 0.8333, 4) == 28 and scaled_side(32, 0.1, 4) == 4


def test_trainer_feeds_the_scheduled_sizes(data_dir):
    # 10 steps, progress k/10 at step k: 16 px until 0.5, ramp 0.5 -> 0.8, then 32 px.
    # step 6: scale 0.5 + 0.5 * (0.1 / 0.3) = 0.667 -> 21.3 px -> 20 (multiple of 4); step 7: 0.833 -> 26.7 -> 28.
    recorder = FedRecorder()
    make = image_trainer_factory(data_dir, algorithms=lambda: [ProgressiveResizing()], callbacks=[recorder])
    make(max_duration="10ba").fit()
    sides = [tuple(x.shape[-2:]) for x in recorder.inputs]
    assert sides == [(s, s) for s in (16, 16, 16, 16, 16, 16, 20, 28, 32, 32)]


def test_resize_keeps_the_image_content(images):
    x, y = images
    small, same_y = resize_batch(x, y, 0.5)
    assert small.shape == (8, 3, 16, 16) and torch.equal(same_y, y)
    # an antialiased 2x downscale keeps each image's mean colour
    assert torch.allclose(small.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=0.05)


@pytest.mark.parametrize("scale", [0.5, 0.75, 0.25])
def test_nearest_interpolation_is_composers_resize(images, scale):
    """Composer's resize mode: F.interpolate(x, scale_factor=s, mode="nearest") with s pinned to the increment."""
    x, y = images
    ours, _ = resize_batch(x, y, scale, interpolation="nearest", size_increment=4)
    pinned = round(32 * scale / 4) * 4 / 32
    assert torch.equal(ours, F.interpolate(x, scale_factor=pinned, mode="nearest"))
    default, _ = resize_batch(x, y, scale, size_increment=4)  # hasten's default is not Composer's
    assert default.shape == ours.shape and not torch.equal(default, ours)
    with pytest.raises(ConfigError, match="interpolation"):
        resize_batch(x, y, scale, interpolation="bicubic")


def test_algorithm_passes_its_interpolation(images):
    x, y = images
    state, engine = bare_state([ProgressiveResizing(interpolation="nearest")], max_duration="10ba", batch=(x, y))
    fire(engine, Event.BATCH_START)
    assert torch.equal(state.inputs, resize_batch(x, y, 0.5, interpolation="nearest")[0])


def test_crop_mode_returns_a_window_of_the_images(images):
    x, y = images
    torch.manual_seed(4)
    crop, _ = resize_batch(x, y, 0.5, mode="crop")
    windows = [(t, l) for t in range(17) for l in range(17) if torch.equal(x[:, :, t : t + 16, l : l + 16], crop)]
    assert len(windows) == 1


def test_dense_targets_resize_with_the_images():
    masks = torch.arange(16).repeat_interleave(2).view(1, 32).expand(32, 32).unsqueeze(0)
    _, small = resize_batch(torch.randn(1, 3, 32, 32), masks, 0.5, resize_targets=True)
    assert small.shape == (1, 16, 16) and small.dtype == masks.dtype
    assert torch.equal(small[0, 0], torch.arange(16))


def test_algorithm_matches_functional_form_on_same_rng(images):
    x, y = images
    algorithm = ProgressiveResizing(mode="crop", initial_scale=0.5)
    state, engine = bare_state([algorithm], max_duration="10ba", batch=(x, y))
    state.timestamp.batch = 6
    torch.manual_seed(9)
    fire(engine, Event.BATCH_START)
    torch.manual_seed(9)
    expected, _ = resize_batch(x, y, progressive_resizing_scale(0.6), mode="crop", size_increment=4)
    assert torch.equal(state.inputs, expected) and state.inputs.shape[-1] == 20


def test_progressive_resizing_resumes_exactly(tmp_path, data_dir):
    make = image_trainer_factory(
        data_dir, algorithms=lambda: [ProgressiveResizing(mode="crop", delay_fraction=0.25, finetune_fraction=0.25)]
    )
    assert_resumes_exactly(make, tmp_path)


@pytest.mark.parametrize("order", [0, 1])
def test_selective_backprop_is_refused_with_both_names(order):
    pair = [SelectiveBackprop(), ProgressiveResizing()]
    with pytest.raises(ConflictError) as info:
        check_composition(pair if order == 0 else pair[::-1])
    message = str(info.value)
    assert "'selective_backprop'" in message and "'progressive_resizing'" in message
    assert "fixed_input_shape" in message


def test_text_batches_are_one_clear_error():
    with pytest.raises(ConfigError, match="needs image batches"):
        resize_batch(torch.randint(0, 9, (4, 32)), torch.zeros(4), 0.5)


def test_a_model_that_needs_full_size_images_is_refused_before_training(data_dir):
    fixed_size = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))  # no global pooling
    trainer = image_trainer_factory(data_dir, algorithms=lambda: [ProgressiveResizing()], model=lambda: fixed_size)()
    with pytest.raises(ConfigError, match="progressive_resizing shrinks the training images from 32x32 to 16x16"):
        trainer.fit()
    assert trainer.state.timestamp.batch == 0
