"""The NaN guard without per-step syncs, divergence in the last update, forged checkpoint positions."""

import pytest
import torch

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.errors import CheckpointError
from hasten.trainer import checkpoint as ckpt
from hasten.trainer.guard import Diverged, LossGuard, check_weights
from tests.harness import image_trainer_factory

NAN = torch.tensor(float("nan"))


def test_a_deferred_guard_names_the_first_bad_step_when_it_reads():
    guard = LossGuard(torch.device("cpu"), every=4)
    losses = [1.0, 0.9, 0.8, 0.7, 0.6, float("inf"), float("nan"), 0.5]
    for step, value in enumerate(losses[:7], start=1):
        guard.observe(torch.tensor(value), step)  # steps 1-4 read at step 4: all finite; 5-7 pending
    assert guard.last_loss == pytest.approx(0.7)
    with pytest.raises(Diverged, match="became inf at step 6"):
        guard.observe(torch.tensor(losses[7]), 8)


def test_an_explicit_check_reads_what_is_pending():
    guard = LossGuard(torch.device("cpu"), every=100)
    guard.observe(torch.tensor(2.0), 1)
    guard.observe(NAN, 2)
    with pytest.raises(Diverged, match="step 2"):
        guard.check()


def test_on_cpu_the_guard_reads_every_step():
    guard = LossGuard(torch.device("cpu"))
    assert guard.every == 1
    guard.observe(torch.tensor(3.0), 1)
    assert guard.last_loss == 3.0
    with pytest.raises(Diverged, match="step 2"):
        guard.observe(NAN, 2)


def test_weights_broken_by_an_update_are_caught():
    check_weights([torch.ones(3), torch.arange(3)], 5)
    with pytest.raises(Diverged, match="step 5"):
        check_weights([torch.ones(3), torch.tensor([1.0, float("inf")])], 5)


class _PoisonLastUpdate(Algorithm):
    """After the final optimizer step, break one weight (as an overflowing update would)."""

    def __init__(self, last: int) -> None:
        self.last = last

    def match(self, event, state):
        return event is Event.AFTER_OPTIMIZER_STEP and state.timestamp.batch == self.last - 1

    def apply(self, event, state):
        with torch.no_grad():
            next(state.model.parameters()).view(-1)[0] = float("nan")


def test_divergence_in_the_last_update_is_recorded_as_diverged(data_dir, tmp_path):
    make = image_trainer_factory(data_dir, algorithms=lambda: [_PoisonLastUpdate(4)])
    result = make(max_duration="4ba", checkpoint_dir=tmp_path / "ckpt").fit()
    assert result.status == "diverged", result.status
    assert "step 4" in result.error
    assert ckpt.list_checkpoints(tmp_path / "ckpt") == []  # no checkpoint of broken weights


@pytest.mark.parametrize(
    "forged", [{"batch": 10**12}, {"batch": -1}, {"batch": 2.5}, {"epoch": 99}, {"batch_in_epoch": 7}]
)
def test_a_checkpoint_with_an_impossible_position_is_refused(data_dir, tmp_path, forged):
    make = image_trainer_factory(data_dir)
    directory = tmp_path / "ckpt"
    make(max_duration="4ba", checkpoint_dir=directory, checkpoint_interval="2ba").fit()
    path = ckpt.list_checkpoints(directory)[0]  # step 2
    payload = torch.load(path, weights_only=True)
    payload["timestamp"].update(forged)
    torch.save(payload, path)
    resumed = make(max_duration="4ba", resume_from=path)
    with pytest.raises(CheckpointError):
        resumed.fit()


def test_validate_timestamp_accepts_a_real_position():
    ckpt.validate_timestamp(dict(epoch=1, batch=10, batch_in_epoch=2, sample=320, token=0), 20, 8)
    with pytest.raises(CheckpointError, match="beyond this run's 20 steps"):
        ckpt.validate_timestamp(dict(epoch=1, batch=21, batch_in_epoch=2, sample=320, token=0), 20, 8)
