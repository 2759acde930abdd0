import pytest
import torch

from hasten.core.event import Event
from hasten.data.augment import ImageAugment
from hasten.data.memory import TensorBatches
from hasten.errors import ConfigError
from hasten.methods.alternating_flip import AlternatingFlip, alternating_flip_batch, first_epoch_flips
from tests.harness import assert_resumes_exactly, cifar_slice, image_trainer_factory, normalize_images
from tests.methods.data_helpers import FedRecorder, bare_state, fire


@pytest.fixture
def images(data_dir):
    x, y = cifar_slice(str(data_dir), 64)
    return normalize_images(x), y


def test_first_epoch_choices_are_fair_and_reproducible():
    flips = first_epoch_flips(1000, seed=0)
    assert 0.45 < float(flips.float().mean()) < 0.55
    assert torch.equal(flips, first_epoch_flips(1000, seed=0))
    assert not torch.equal(flips, first_epoch_flips(1000, seed=1))


def test_flips_exactly_the_due_set_and_alternates(images):
    x, _ = images
    indices = torch.arange(64)
    first = first_epoch_flips(64, seed=3)
    for epoch in range(4):
        out = alternating_flip_batch(x, indices, epoch, first)
        due = first ^ (epoch % 2 == 1)
        assert torch.equal(out[due], x[due].flip(-1))
        assert torch.equal(out[~due], x[~due])
    epoch0 = alternating_flip_batch(x, indices, 0, first)
    epoch1 = alternating_flip_batch(x, indices, 1, first)
    assert torch.equal(epoch1, epoch0.flip(-1))  # each image shows the other orientation next epoch


def test_trainer_feeds_each_sample_in_its_due_orientation(data_dir):
    """96 images, batches of 32: three epochs of three steps. Every fed image must be the
    source image flipped iff first_flip[i] XOR (epoch is odd)."""
    recorder = FedRecorder()
    make = image_trainer_factory(data_dir, algorithms=lambda: [AlternatingFlip()], n=96, callbacks=[recorder])
    trainer = make(max_duration="3ep")
    trainer.fit()
    source = trainer.state.train_data
    first = first_epoch_flips(96, seed=0)
    flipped_in = {}
    for step, fed in enumerate(recorder.inputs):
        epoch, index = divmod(step, 3)
        picked = source.order(epoch)[index * 32 : (index + 1) * 32]
        raw = source.inputs[picked]
        due = first[picked] ^ (epoch % 2 == 1)
        assert torch.equal(fed[due], raw[due].flip(-1)) and torch.equal(fed[~due], raw[~due])
        for i, d in zip(picked.tolist(), due.tolist()):
            flipped_in.setdefault(i, []).append(d)
    assert len(flipped_in) == 96
    assert all(seq in ([True, False, True], [False, True, False]) for seq in flipped_in.values())


def test_algorithm_matches_functional_form(images):
    x, y = images
    source = TensorBatches(x, y, 16, seed=0)
    state, engine = bare_state([AlternatingFlip()], train_data=source, seed=5)
    fire(engine, Event.INIT)
    state.timestamp.epoch, state.timestamp.batch_in_epoch = 1, 2
    batch_x, batch_y = list(source.batches(1))[2]
    state.batch = (batch_x, batch_y)
    fire(engine, Event.BATCH_START)
    picked = source.order(1)[32:48]
    assert torch.equal(state.inputs, alternating_flip_batch(batch_x, picked, 1, first_epoch_flips(64, seed=5)))


def test_replaces_the_random_flip_of_the_source_augmentation(images):
    x, y = images
    source = TensorBatches(x, y, 16, transform=ImageAugment((0.0,) * 3, (1.0,) * 3, crop_padding=0))
    state, engine = bare_state([AlternatingFlip()], train_data=source)
    fire(engine, Event.INIT)
    assert source.transform.flip is False and state.extra["alternating_flip"]["replaced_random_flip"]
    fed, _ = next(source.batches(0))
    assert torch.equal(fed, x[source.order(0)[:16]])  # no random flip left (and no crop at padding 0)


def test_alternating_flip_resumes_exactly(tmp_path, data_dir):
    make = image_trainer_factory(data_dir, algorithms=lambda: [AlternatingFlip()], n=96)
    assert_resumes_exactly(make, tmp_path)  # 3 steps per epoch: the checkpoint falls mid-epoch 2


def test_a_source_that_cannot_name_its_samples_is_one_clear_error(images, data_dir):
    x, y = images
    plain_batches = [(x[:32], y[:32]), (x[32:], y[32:])]
    make = image_trainer_factory(data_dir, algorithms=lambda: [AlternatingFlip()])
    with pytest.raises(ConfigError, match="alternating_flip needs to know which samples are in each batch"):
        make(train_data=plain_batches, eval_data=None)
