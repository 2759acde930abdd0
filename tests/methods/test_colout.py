import pytest
import torch

from hasten.core.composition import check_composition
from hasten.core.event import Event
from hasten.errors import ConfigError
from hasten.methods.colout import ColOut, colout_batch
from hasten.methods.selective_backprop import SelectiveBackprop
from tests.harness import assert_resumes_exactly, cifar_slice, image_trainer_factory, normalize_images
from tests.methods.data_helpers import FedRecorder, bare_state, fire


@pytest.fixture
def images(data_dir):
    x, y = cifar_slice(str(data_dir), 64)
    return normalize_images(x[:8]), y[:8]


def kept_positions(full: torch.Tensor, reduced: torch.Tensor, dim: int) -> list[int]:
    """For each slice of ``reduced`` along ``dim``, the position of the identical slice in ``full``."""
    positions = []
    for i in range(reduced.shape[dim]):
        piece = reduced.select(dim, i)
        matches = [j for j in range(full.shape[dim]) if torch.equal(full.select(dim, j), piece)]
        assert len(matches) == 1
        positions.append(matches[0])
    return positions


def test_drops_the_stated_share_of_rows_and_columns_in_order(images):
    x, _ = images
    torch.manual_seed(0)
    rows_only = colout_batch(x, p_row=0.15, p_col=0.0)
    assert rows_only.shape == (8, 3, 27, 32)  # int(0.85 * 32) = 27 rows kept
    rows = kept_positions(x, rows_only, dim=2)  # the same rows for every image (whole-batch slices)
    assert rows == sorted(rows) and len(set(rows)) == 27
    cols_only = colout_batch(x, p_row=0.0, p_col=0.25)
    cols = kept_positions(x, cols_only, dim=3)
    assert len(cols) == 24 and cols == sorted(cols)
    both = colout_batch(x)
    assert both.shape == (8, 3, 27, 27)


def test_algorithm_matches_functional_form_on_same_rng(images):
    x, y = images
    state, engine = bare_state([ColOut(0.2, 0.1)], batch=(x, y))
    torch.manual_seed(3)
    fire(engine, Event.BATCH_START)
    torch.manual_seed(3)
    assert torch.equal(state.inputs, colout_batch(x, 0.2, 0.1))
    assert torch.equal(state.targets, y)


def test_trainer_feeds_a_fixed_smaller_shape(data_dir):
    recorder = FedRecorder()
    image_trainer_factory(data_dir, algorithms=lambda: [ColOut()], callbacks=[recorder])(max_duration="4ba").fit()
    assert {tuple(x.shape[-2:]) for x in recorder.inputs} == {(27, 27)}


def test_colout_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, algorithms=lambda: [ColOut()]), tmp_path)


def test_composes_with_selective_backprop_because_its_shape_is_fixed():
    check_composition([SelectiveBackprop(), ColOut()])


def test_bad_inputs_are_refused():
    with pytest.raises(ConfigError, match="colout needs image batches"):
        colout_batch(torch.randint(0, 9, (4, 32)))
    with pytest.raises(ValueError, match="p_row"):
        ColOut(p_row=1.0)


def test_a_model_that_needs_full_size_images_is_refused_before_training(data_dir):
    fixed_size = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))  # no global pooling
    trainer = image_trainer_factory(data_dir, algorithms=lambda: [ColOut()], model=lambda: fixed_size)()
    with pytest.raises(ConfigError, match="colout shrinks the training images from 32x32 to 27x27") as caught:
        trainer.fit()
    assert "pools globally" in caught.value.hint
    assert trainer.state.timestamp.batch == 0  # nothing trained
