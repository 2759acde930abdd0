"""The resume policy: which run --resume continues, and what it refuses (library level)."""

import pytest

from hasten.errors import CheckpointError, ConfigError
from hasten.store.records import RunRecord
from hasten.store.store import RunStore
from hasten.workloads.resume import new_run, resolve_resume


@pytest.fixture()
def store(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    checkpoints = tmp_path / "ckpt"
    checkpoints.mkdir()
    (checkpoints / "step-4.pt").write_bytes(b"not read here")
    store.create_run(
        RunRecord(
            run_id="r1",
            workload="toy",
            recipe="mixup:alpha=0.2+label_smoothing",
            seed=3,
            duration="2ep",
            schedule="cyclic",
            config={"checkpoint_dir": str(checkpoints), "precision": "bf16", "deterministic": True},
        )
    )
    store.create_run(RunRecord(run_id="r2", workload="toy", status="completed", config={}))
    store.create_run(RunRecord(run_id="r3", workload="toy", config={"checkpoint_dir": str(tmp_path / "none")}))
    return store


def test_a_resumable_run_brings_back_its_own_settings(store, tmp_path):
    placed = resolve_resume(store, "r1", "toy")
    assert placed.run_id == "r1" and placed.resume_from == placed.checkpoint_dir == str(tmp_path / "ckpt")
    assert placed.methods == ("mixup:alpha=0.2", "label_smoothing")
    assert (placed.duration, placed.seed, placed.schedule, placed.precision) == ("2ep", 3, "cyclic", "bf16")
    assert placed.deterministic is True
    assert resolve_resume(store, "r1", "toy", ["mixup:alpha=0.2", "label_smoothing"]).run_id == "r1"


@pytest.mark.parametrize(
    "target, workload, methods, error, needle",
    [
        ("nope", "toy", (), ConfigError, "no run 'nope'"),
        ("r1", "mnist", (), ConfigError, "is a 'toy' run, not 'mnist'"),
        ("r1", "toy", ("mixup",), ConfigError, "used methods"),
        ("r2", "toy", (), ConfigError, "already completed"),
        ("r3", "toy", (), CheckpointError, "has no checkpoint"),
    ],
)
def test_what_cannot_be_resumed_is_one_clear_error(store, target, workload, methods, error, needle):
    with pytest.raises(error, match=needle):
        resolve_resume(store, target, workload, methods)


def test_a_new_run_keeps_its_checkpoints_beside_the_store(store, tmp_path):
    placed = new_run(store)
    assert placed.resume_from is None and placed.checkpoint_dir == str(tmp_path / "checkpoints" / placed.run_id)
    assert new_run(store, checkpoints=False).checkpoint_dir is None
