import itertools

import pytest
import torch

from hasten.core.event import Event
from hasten.data.memory import TensorBatches
from hasten.methods.alternating_flip import AlternatingFlip, sample_indices
from hasten.methods.data_echoing import DataEchoing, EchoingSource, echo_batches, suggested_echo_factor
from tests.harness import assert_resumes_exactly, cifar_slice, image_trainer_factory, normalize_images
from tests.methods.data_helpers import FedRecorder, bare_state, fire


class NoisyCountingTransform:
    """A batch augmentation that uses torch's global RNG and counts how often the loader runs it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x, y):
        self.calls += 1
        return x + 0.1 * torch.randn_like(x), y


@pytest.fixture
def source(data_dir):
    x, y = cifar_slice(str(data_dir), 80)
    return TensorBatches(normalize_images(x), y, 16, seed=0)  # 5 batches per epoch


def test_source_equals_the_functional_echo_across_epochs(source):
    echoed = EchoingSource(source, echo_factor=2)
    steps = list(itertools.chain.from_iterable(echoed.batches(epoch) for epoch in range(4)))
    upstream = itertools.chain(source.batches(0), source.batches(1))
    expected = list(echo_batches(upstream, 2))
    assert len(steps) == len(expected) == 20
    for (x, y), (ex, ey) in zip(steps, expected):
        assert torch.equal(x, ex) and torch.equal(y, ey)
    assert len(echoed) == len(source)  # an epoch keeps its number of steps


def test_any_position_maps_to_its_upstream_batch(source):
    echoed = EchoingSource(source, echo_factor=3)
    assert echoed.upstream(1, 3) == (0, 2)  # run step 8 -> upstream position 8 // 3 = 2
    assert echoed.upstream(3, 4) == (1, 1)  # run step 19 -> position 6 -> epoch 1, batch 1
    resumed = next(iter(EchoingSource(source, echo_factor=3).batches(3, 4)))  # fresh source, no cache
    assert torch.equal(resumed[0], list(source.batches(1))[1][0])


def test_trainer_steps_repeat_each_loaded_batch(data_dir):
    transform, recorder = NoisyCountingTransform(), FedRecorder()
    make = image_trainer_factory(
        data_dir, algorithms=lambda: [DataEchoing(echo_factor=2)], transform=transform, callbacks=[recorder]
    )
    result = make(max_duration="6ba").fit()
    assert transform.calls == 3  # six steps read three fresh batches
    fed = recorder.inputs
    assert torch.equal(fed[0], fed[1]) and torch.equal(fed[2], fed[3]) and torch.equal(fed[4], fed[5])
    assert not torch.equal(fed[1], fed[2])
    assert result.samples == 6 * 32


class CountingLoader:
    """A plain iterable of batches (as a DataLoader is) that counts the batches it produces."""

    def __init__(self, items) -> None:
        self.items, self.produced = items, 0

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        for batch in self.items:
            self.produced += 1
            yield batch


def test_an_iterable_loader_is_read_once_per_fresh_batch(source, data_dir):
    loader = CountingLoader(list(source.batches(0)))
    make = image_trainer_factory(data_dir, algorithms=lambda: [DataEchoing(echo_factor=2)])
    make(train_data=loader, max_duration="2ep").fit()  # 10 steps over 5-batch epochs, crossing mid-echo
    assert loader.produced == 5


def test_data_echoing_resumes_exactly_mid_echo(tmp_path, data_dir):
    """Checkpoint after step 3: step 4 re-uses the batch loaded (with random noise) at step 3."""
    make = image_trainer_factory(
        data_dir, algorithms=lambda: [DataEchoing(echo_factor=2)], transform=NoisyCountingTransform()
    )
    assert_resumes_exactly(make, tmp_path, steps=8, checkpoint_at=3)


def test_without_the_saved_batch_resume_would_drift(tmp_path, data_dir, monkeypatch):
    """The control for the test above: drop the checkpointed batch and the resumed run differs."""
    monkeypatch.setattr(DataEchoing, "load_state_dict", lambda self, state: None)
    make = image_trainer_factory(
        data_dir, algorithms=lambda: [DataEchoing(echo_factor=2)], transform=NoisyCountingTransform()
    )
    with pytest.raises(AssertionError, match="differs after resume"):
        assert_resumes_exactly(make, tmp_path, steps=8, checkpoint_at=3)


def test_algorithm_wraps_the_source_once(source):
    algorithm = DataEchoing(echo_factor=3)
    state, engine = bare_state([algorithm], train_data=source)
    fire(engine, Event.INIT, Event.INIT)
    assert isinstance(state.train_data, EchoingSource) and state.train_data.inner is source
    functional = list(echo_batches(source.batches(0), 3))[:5]
    for (x, _), (ex, _) in zip(state.train_data.batches(0), functional):
        assert torch.equal(x, ex)


def test_sample_indices_pass_through_for_alternating_flip(source, data_dir):
    echoed = EchoingSource(source, echo_factor=2)
    assert torch.equal(sample_indices(echoed, 1, 2), sample_indices(source, 0, 3))  # step 7 -> upstream 3
    recorder = FedRecorder()
    make = image_trainer_factory(
        data_dir, algorithms=lambda: [AlternatingFlip(), DataEchoing(echo_factor=2)], callbacks=[recorder]
    )
    make(max_duration="4ba").fit()
    assert torch.equal(recorder.inputs[0], recorder.inputs[1])  # same epoch, same batch: same flips


def test_suggested_echo_factor_is_the_upstream_to_downstream_ratio():
    assert suggested_echo_factor(3.2, 1.0) == 3
    assert suggested_echo_factor(0.5, 1.0) == 1  # not data-bound: do not echo
    assert suggested_echo_factor(1.0, 0.0) == 1
