import pytest
import torch
from torch import nn

from hasten.core.event import Event
from hasten.errors import ConfigError
from hasten.methods.tta import TTA, translate_batch, tta_forward, tta_views
from tests.harness import (
    TinyConvNet,
    assert_resumes_exactly,
    cifar_slice,
    image_trainer_factory,
    normalize_images,
    weights,
)
from tests.methods.data_helpers import bare_state, fire


@pytest.fixture
def images(data_dir):
    x, y = cifar_slice(str(data_dir), 64)
    return normalize_images(x[:8]), y[:8]


def reflect(i: torch.Tensor, size: int) -> torch.Tensor:
    return torch.where(i < 0, -i, torch.where(i >= size, 2 * (size - 1) - i, i))


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """out[i, j] = x[i - dy, j - dx], reflecting at the edges (built by index, independently)."""
    rows = reflect(torch.arange(32) - dy, 32)
    cols = reflect(torch.arange(32) - dx, 32)
    return x[..., rows[:, None], cols[None, :]]


def test_translation_shifts_with_reflection(images):
    x, _ = images
    assert torch.equal(translate_batch(x, 1), shifted(x, 1, 1))
    assert torch.equal(translate_batch(x, -2), shifted(x, -2, -2))
    assert torch.equal(translate_batch(x, 1)[..., 0, 5], x[..., 1, 4])  # row -1 reflects to row 1


def test_level_two_averages_the_six_stated_views(images):
    x, _ = images
    weights_ = [w for w, _ in tta_views(x, level=2)]
    assert weights_ == [0.25, 0.25, 0.125, 0.125, 0.125, 0.125] and sum(weights_) == 1.0
    pixels = nn.Flatten()  # a "model" whose logits are its input pixels: the average is visible directly
    expected = (
        0.25 * (x + x.flip(-1))
        + 0.125 * (shifted(x, -1, -1) + shifted(x, -1, -1).flip(-1))
        + 0.125 * (shifted(x, 1, 1) + shifted(x, 1, 1).flip(-1))
    )
    assert torch.allclose(tta_forward(pixels, x, level=2), expected.flatten(1), atol=1e-6)


def test_level_one_is_the_mirror_average_of_a_real_network(images):
    x, _ = images
    model = TinyConvNet().eval()
    with torch.no_grad():
        expected = 0.5 * model(x) + 0.5 * model(x.flip(-1))
        assert torch.allclose(tta_forward(model, x, level=1), expected, atol=1e-6)
        assert torch.equal(tta_forward(model, x, level=0), model(x))


def test_algorithm_wraps_the_eval_forward_it_finds(images):
    x, _ = images
    calls = []

    def custom_forward(model, inputs):  # e.g. an averaged model another method installed
        calls.append(inputs.shape)
        return model(inputs) * 2

    model = TinyConvNet().eval()
    state, engine = bare_state([TTA(level=2)], model=model, eval_forward=custom_forward)
    fire(engine, Event.INIT, Event.FIT_START, Event.FIT_START)
    with torch.no_grad():
        got = state.eval_forward(model, x)
        assert torch.allclose(got, tta_forward(model, x, 2, 1, custom_forward), atol=1e-6)
    assert len(calls) == 12  # six views, each through the custom forward, wrapped once
    assert state.extra["tta"] == {"level": 2, "views": 6, "inference_cost_factor": 6.0}


def test_training_is_untouched_and_eval_cost_is_recorded(data_dir):
    plain = image_trainer_factory(data_dir)()
    plain.fit()
    trainer = image_trainer_factory(data_dir, algorithms=lambda: [TTA(level=2)])()
    result = trainer.fit()
    for name, value in weights(plain).items():
        assert torch.equal(weights(trainer)[name], value)
    assert result.run_info["config"]["tta"]["views"] == 6
    assert result.run_info["config"]["tta"]["inference_cost_factor"] == 6.0
    x, y = cifar_slice(str(data_dir), 256)
    model = trainer.state.model.eval()
    with torch.no_grad():
        logits = tta_forward(model, normalize_images(x[:128]), level=2)
    assert result.final["accuracy"] == pytest.approx(float((logits.argmax(1) == y[:128]).float().mean()))


def test_tta_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, algorithms=lambda: [TTA(level=1)]), tmp_path)


def test_text_inputs_are_one_clear_error():
    with pytest.raises(ConfigError, match="needs image batches"):
        tta_views(torch.randint(0, 9, (4, 32)), level=1)
