import pytest
import torch

from hasten.core.event import Event
from hasten.errors import ConfigError
from hasten.methods.seq_length_warmup import SeqLengthWarmup, seq_length_schedule, set_batch_sequence_length
from tests.harness import assert_resumes_exactly, shakespeare_tokens, text_windows
from tests.methods.data_helpers import FedRecorder, bare_state, fire, text_trainer_factory

# Linear from 8 to 64 over the first half of a 10-step run, floored to multiples of 8:
# step k has progress k/10 -> 8 + 56 * (k / 5), floored: 8, 19.2->16, 30.4->24, 41.6->40, 52.8->48, then 64.
SCHEDULED = [8, 16, 24, 40, 48, 64, 64, 64, 64, 64]


@pytest.fixture
def windows(data_dir):
    tokens, _ = shakespeare_tokens(str(data_dir))
    x, y = text_windows(tokens, 64)
    return x[:8], y[:8]


def test_schedule_is_linear_in_multiples_of_the_step():
    lengths = [seq_length_schedule(k / 10, 0.5, min_seq_length=8, max_seq_length=64, step_size=8) for k in range(10)]
    assert lengths == SCHEDULED


# (min, max, step): max - min is a multiple of the step only in the first.
RANGES = [(8, 64, 8), (8, 60, 8), (5, 64, 8), (8, 30, 8), (16, 100, 24), (1, 2, 8), (8, 1000, 64)]


@pytest.mark.parametrize("min_len,max_len,step", RANGES)
@pytest.mark.parametrize("duration,steps", [(0.5, 10), (0.3, 100), (0.7, 37)])
def test_the_warm_up_ends_at_the_full_length(min_len, max_len, step, duration, steps):
    lengths = [seq_length_schedule(k / steps, duration, min_len, max_len, step) for k in range(steps)]
    warm = [n for k, n in enumerate(lengths) if k / steps < duration]
    after = [n for k, n in enumerate(lengths) if k / steps >= duration]
    assert lengths[0] == min_len and lengths == sorted(lengths)
    assert after and all(n == max_len for n in after)  # the step that ends the warm-up and all after
    assert all((n - min_len) % step == 0 and n <= max_len for n in warm)
    assert seq_length_schedule(duration, duration, min_len, max_len, step) == max_len


def test_trainer_feeds_the_full_length_after_an_uneven_warm_up(data_dir):
    recorder = FedRecorder()
    make = text_trainer_factory(
        data_dir, algorithms=lambda: [SeqLengthWarmup(duration=0.5, min_seq_length=5)], callbacks=[recorder]
    )
    make(max_duration="10ba").fit()
    # 64 - 5 = 59 tokens to grow by in steps of 8: 5, 16.8->13, 28.6->21, 40.4->37, 52.2->45, then 64.
    assert [x.shape[1] for x in recorder.inputs] == [5, 13, 21, 37, 45, 64, 64, 64, 64, 64]


def test_truncation_keeps_each_sequence_head(windows):
    x, y = windows
    short_x, short_y = set_batch_sequence_length(x, y, 16)
    assert torch.equal(short_x, x[:, :16]) and torch.equal(short_y, y[:, :16])
    assert set_batch_sequence_length(x, y, 128)[0] is x  # already shorter: untouched


def test_segmenting_reuses_every_token_and_keeps_targets_aligned(windows):
    x, y = windows
    seg_x, seg_y = set_batch_sequence_length(x, y, 16, truncate=False)
    assert seg_x.shape == (32, 16)
    assert torch.equal(seg_x.reshape(-1), x.reshape(-1)) and torch.equal(seg_y.reshape(-1), y.reshape(-1))
    assert torch.equal(seg_y[:, :-1], seg_x[:, 1:])  # next-token targets still line up


def test_trainer_feeds_the_scheduled_lengths(data_dir):
    recorder = FedRecorder()
    make = text_trainer_factory(
        data_dir, algorithms=lambda: [SeqLengthWarmup(duration=0.5, min_seq_length=8)], callbacks=[recorder]
    )
    result = make(max_duration="10ba").fit()
    assert [x.shape[1] for x in recorder.inputs] == SCHEDULED
    assert [y.shape[1] for y in recorder.targets] == SCHEDULED
    assert result.status == "completed"


def test_algorithm_matches_functional_form(windows):
    x, y = windows
    state, engine = bare_state([SeqLengthWarmup(duration=0.5, truncate=False)], max_duration="10ba", batch=(x, y))
    state.timestamp.batch = 3
    fire(engine, Event.BATCH_START)
    expected = set_batch_sequence_length(x, y, seq_length_schedule(0.3, 0.5, 8, 64, 8), truncate=False)
    assert torch.equal(state.inputs, expected[0]) and torch.equal(state.targets, expected[1])
    assert state.inputs.shape == (8, 40)  # one 40-token segment per 64-token row; the rest is dropped


def test_seq_length_warmup_resumes_exactly(tmp_path, data_dir):
    make = text_trainer_factory(data_dir, algorithms=lambda: [SeqLengthWarmup(duration=0.75)])
    assert_resumes_exactly(make, tmp_path)


def test_image_batches_are_one_clear_error():
    with pytest.raises(ConfigError, match="needs \\(N, T\\) inputs"):
        set_batch_sequence_length(torch.randn(4, 3, 32, 32), torch.zeros(4, dtype=torch.long), 8)
