"""Checkpoints: exact resume after a real process kill, and clear errors for bad files."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hasten.errors import CheckpointError
from hasten.trainer.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from tests.conftest import REPO
from tests.harness import image_trainer_factory


def worker(data_dir, ckpt_dir, out, mode) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.trainer.resume_worker", str(data_dir), str(ckpt_dir), str(out), mode],
        cwd=REPO,
        env=env,
    )


def test_killed_run_resumes_to_the_same_weights_bit_for_bit(tmp_path, data_dir):
    reference = worker(data_dir, tmp_path / "unused", tmp_path / "full.pt", "full")
    victim = worker(data_dir, tmp_path / "ckpt", tmp_path / "never.pt", "slow")
    deadline = time.time() + 120
    while time.time() < deadline and not any(
        int(p.stem.split("-")[1]) >= 8 for p in list_checkpoints(tmp_path / "ckpt")
    ):
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    assert not (tmp_path / "never.pt").exists()
    killed_at = max(int(p.stem.split("-")[1]) for p in list_checkpoints(tmp_path / "ckpt"))
    assert 8 <= killed_at < 24

    assert worker(data_dir, tmp_path / "ckpt", tmp_path / "resumed.pt", "resume").wait(timeout=300) == 0
    assert reference.wait(timeout=300) == 0
    full = torch.load(tmp_path / "full.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert full["steps"] == resumed["steps"] == 24
    for name, value in full["weights"].items():
        assert torch.equal(value, resumed["weights"][name]), name


def test_resume_harness_catches_an_algorithm_that_forgets_its_state(tmp_path, data_dir):
    """The shared resume check must be able to fail: a stateful method without state_dict breaks it."""
    from hasten.core.algorithm import Algorithm
    from hasten.core.event import Event
    from tests.harness import assert_resumes_exactly

    class ForgetfulScaler(Algorithm):
        def __init__(self):
            self.calls = 0

        def match(self, event, state):
            return event is Event.AFTER_LOSS

        def apply(self, event, state):
            self.calls += 1
            state.loss = state.loss * (1 + self.calls / 10)

    with pytest.raises(AssertionError, match="differs after resume"):
        assert_resumes_exactly(image_trainer_factory(data_dir, algorithms=lambda: [ForgetfulScaler()]), tmp_path)


def test_non_resumable_method_is_refused(tmp_path, data_dir):
    from hasten.core.algorithm import Algorithm

    class OneShot(Algorithm):
        resumable = False

        def match(self, event, state):
            return False

    make = image_trainer_factory(data_dir, algorithms=lambda: [OneShot()])
    make(max_duration="4ba", checkpoint_dir=tmp_path, checkpoint_interval="2ba").fit()
    with pytest.raises(CheckpointError, match="one_shot cannot continue exactly"):
        make(max_duration="4ba", resume_from=tmp_path).fit()


def test_resume_with_other_methods_is_refused(tmp_path, data_dir):
    from hasten.core.algorithm import Algorithm

    class Noop(Algorithm):
        def match(self, event, state):
            return False

    image_trainer_factory(data_dir)(max_duration="4ba", checkpoint_dir=tmp_path, checkpoint_interval="2ba").fit()
    with pytest.raises(CheckpointError, match="written with methods none"):
        image_trainer_factory(data_dir, algorithms=lambda: [Noop()])(resume_from=tmp_path).fit()


def test_checkpoints_are_pruned_and_written_atomically(tmp_path, data_dir):
    image_trainer_factory(data_dir)(
        max_duration="10ba", checkpoint_dir=tmp_path, checkpoint_interval="2ba", keep_checkpoints=2
    ).fit()
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["step-000000008.pt", "step-000000010.pt"]
    assert not list(tmp_path.glob("*.tmp"))
    payload = load_checkpoint(tmp_path)
    assert payload["timestamp"]["batch"] == 10
    assert set(payload["rng"]) >= {"python", "numpy", "torch"}


@pytest.mark.parametrize("damage", ["truncated", "garbage", "foreign", "empty"])
def test_unreadable_checkpoints_give_one_clear_error(tmp_path, damage):
    path = tmp_path / "step-000000001.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(1000)}})
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    elif damage == "foreign":
        torch.save({"state_dict": {}}, path)
    else:
        path.write_bytes(b"")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert ("not a hasten checkpoint" in message) if damage == "foreign" else ("cannot read checkpoint" in message)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="no checkpoints in"):
        load_checkpoint(tmp_path)


def test_malicious_pickle_is_not_executed(tmp_path):
    path = tmp_path / "evil.pt"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    torch.save({"format": "hasten-checkpoint", "version": 1, "x": Evil()}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
