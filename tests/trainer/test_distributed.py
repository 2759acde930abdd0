"""Data-parallel training: shards, refusals and resume rules in-process; real 2-process gloo runs
(``torchrun --standalone``) for equivalence with one process, method state, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hasten.core.metrics import Accuracy
from hasten.data.memory import TensorBatches
from hasten.errors import ConfigError
from hasten.methods.registry import build_methods
from hasten.store.store import RunStore
from hasten.trainer import distributed
from hasten.trainer.distributed import EveryNth, Replicas, SlicedSource
from hasten.trainer.sources import IterableSource
from hasten.workloads import build_trainer
from tests.trainer.ddp_worker import STATEFUL, STEPS

ROOT = Path(__file__).resolve().parents[2]


def batches(n: int = 64, batch_size: int = 8) -> TensorBatches:
    return TensorBatches(torch.arange(n).float().unsqueeze(1), torch.arange(n), batch_size, seed=3)


# ------------------------------------------------------------------ shards
def test_tensor_shards_split_every_global_batch_into_disjoint_parts_in_the_same_order():
    whole = batches()
    parts = [whole.shard(rank, 2) for rank in range(2)]
    for epoch in (0, 1):
        for full, left, right in zip(whole.batches(epoch), parts[0].batches(epoch), parts[1].batches(epoch)):
            assert torch.equal(torch.cat([left[1], right[1]]), full[1])
    assert len(parts[0]) == len(whole) and parts[0].batch_size == whole.batch_size  # global batch, global steps
    assert torch.equal(parts[1].sample_indices(1, 2), next(iter(parts[1].batches(1, 2)))[1])


def test_dataloader_shards_load_only_their_part_of_every_batch():
    from hasten.data.streaming import LoaderBatches

    dataset = torch.utils.data.TensorDataset(torch.arange(24).float(), torch.arange(24))
    whole = LoaderBatches(dataset, 6, seed=1)
    parts = [whole.shard(rank, 2) for rank in range(2)]
    for full, left, right in zip(whole.batches(1), parts[0].batches(1), parts[1].batches(1)):
        assert len(left[1]) == len(right[1]) == 3
        assert torch.equal(torch.cat([left[1], right[1]]), full[1])
    assert [b[1].tolist() for b in parts[1].batches(1, 3)] == [next(iter(whole.batches(1, 3)))[1][3:].tolist()]


def test_any_other_source_is_sliced_and_resumes_mid_epoch():
    source = IterableSource([(torch.arange(i, i + 4), torch.arange(i, i + 4)) for i in range(0, 40, 4)])
    sliced = Replicas(rank=1, world_size=2).shard_train(source)
    assert isinstance(sliced, SlicedSource) and len(sliced) == 10
    assert [b[0].tolist() for b in sliced.batches(0, 8)] == [[34, 35], [38, 39]]


def test_eval_is_sharded_only_when_every_metric_can_be_summed():
    replicas, data = Replicas(rank=1, world_size=2), [(torch.zeros(1), torch.zeros(1))] * 5

    class Median(Accuracy):
        sums = ()

    assert isinstance(replicas.shard_eval(data, {"accuracy": Accuracy()}), EveryNth)
    assert len(list(replicas.shard_eval(data, {"accuracy": Accuracy()}))) == 2
    assert replicas.shard_eval(data, {"median": Median()}) is data  # every rank evaluates everything


def test_a_global_batch_that_does_not_split_evenly_is_refused():
    with pytest.raises(ConfigError, match="does not split evenly over 3 processes"):
        Replicas(rank=0, world_size=3).check_batch(batches(batch_size=8))


# ----------------------------------------------------------------- refusals
def test_every_method_declares_whether_it_supports_data_parallelism():
    from hasten.methods.registry import all_methods

    for entry in all_methods():
        card = entry.card
        assert isinstance(entry.algorithm.data_parallel, bool), f"{card.name} does not declare data_parallel"
        assert card.data_parallel is entry.algorithm.data_parallel
        if not card.data_parallel:
            assert card.data_parallel_note, f"{card.name} is refused under torchrun without saying why"


def test_methods_with_per_process_state_are_refused_in_one_line(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.launched()
    with pytest.raises(ConfigError) as info:
        build_trainer("toy", ["sam", "ema"], duration="2ba", device="cpu")
    message = str(info.value)
    assert "sam cannot run data-parallel" in message and "never all-reduced" in message
    assert "ema" not in message.split("(")[0]  # ema supports data parallelism
    assert "train in one process" in message and "\n" not in message


def test_an_algorithm_that_does_not_declare_support_is_refused():
    (ema,) = build_methods(["ema"])

    class Custom(type(ema)):  # type: ignore[misc]
        data_parallel = None

    with pytest.raises(ConfigError, match="does not declare data_parallel"):
        distributed.refuse_unsupported([Custom()])


def test_resuming_on_another_world_size_is_refused_in_one_line():
    with pytest.raises(ConfigError) as info:
        Replicas(rank=0, world_size=1).check_world({"world_size": 2, "run_id": "abc"}, "abc")
    assert str(info.value) == (
        "run abc was trained on 2 process(es), this launch has 1"
        " (resume it with torchrun --nproc_per_node 2 (in all), or start a new run)"
    )
    Replicas().check_world({}, "old")  # a checkpoint from before data parallelism: one process


# -------------------------------------------------------- real processes
def torchrun(*args: str, env: dict[str, str] | None = None, **popen: object) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    return subprocess.Popen(command, cwd=ROOT, env={**environment, **(env or {})}, text=True, **popen)  # type: ignore[call-overload]


def finished(process: subprocess.Popen, timeout: float = 240) -> str:
    _, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]
    return stderr


@pytest.mark.slow
def test_two_processes_at_global_batch_b_match_one_process_at_batch_b(tmp_path):
    out = tmp_path / "ddp.pt"
    finished(torchrun("-m", "tests.trainer.ddp_worker", "equivalence", str(out), stderr=subprocess.PIPE))
    ddp = torch.load(out, weights_only=True)

    single = build_trainer("toy", duration=f"{STEPS}ba", device="cpu", eval_interval=f"{STEPS}ba")
    result = single.fit()
    assert ddp["world_size"] == 2 and ddp["steps"] == result.steps == STEPS
    assert ddp["samples"] == result.samples == STEPS * 128  # durations count global samples
    # Tolerance: the same SGD steps, the mean gradient summed in another order (float32 rounding).
    for name, weight in single.state.model.state_dict().items():
        torch.testing.assert_close(ddp["model"][name], weight, rtol=1e-4, atol=1e-5)
    assert abs(ddp["train_loss"] - single.state.train_loss) < 1e-4
    assert abs(ddp["final"]["accuracy"] - result.final["accuracy"]) <= 1 / 1024  # at most one of 1024 eval samples
    assert ddp["communication"] > 0  # the all-reduce was timed


@pytest.mark.slow
def test_methods_with_state_keep_every_replica_identical(tmp_path):
    out = tmp_path / "methods.json"
    finished(torchrun("-m", "tests.trainer.ddp_worker", "methods", str(out), stderr=subprocess.PIPE))
    report = json.loads(out.read_text())
    assert set(report) == set(STATEFUL)
    for name, row in report.items():
        assert row["weights_same"], name
        # data echoing caches this rank's own batch: its state differs, and each rank's is checkpointed
        assert row["method_state_same"] == (name != "data_echoing"), name
    assert report["ema"]["method_tensors"] > 0


@pytest.mark.slow
def test_batchnorm_statistics_are_rank_zeros_on_every_replica(tmp_path, data_dir):
    out = tmp_path / "bn.json"
    worker = torchrun(
        "-m",
        "tests.trainer.ddp_worker",
        "batchnorm",
        str(out),
        env={"HASTEN_DATA": str(data_dir)},
        stderr=subprocess.PIPE,
    )
    finished(worker)
    report = json.loads(out.read_text())
    assert report["running_stats"] > 0 and report["same_on_every_rank"]


def rank_pid(parent: int, rank: int) -> int | None:
    """The worker process of ``rank`` among the children of torchrun ``parent``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == parent and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the rank's process through /proc")
def test_a_killed_rank_fails_the_run_which_resumes_on_as_many_processes(tmp_path):
    store_path = tmp_path / "runs.db"
    env = {"HASTEN_STORE": str(store_path)}
    args = ("-m", "hasten", "train", "toy", "--duration", "15ep", "--checkpoint-interval", "30ba")
    run = torchrun(*args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, steps = time.time() + 180, 0
    try:
        while time.time() < deadline and steps == 0 and run.poll() is None:
            time.sleep(0.1)
            runs = RunStore(store_path).list_runs() if store_path.exists() else []
            steps = runs[0].steps if runs else 0
        assert steps > 0, "the run never recorded a checkpointed step"
        victim = rank_pid(run.pid, 1)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    (record,) = RunStore(store_path).list_runs()
    assert record.status in ("failed", "interrupted"), record.status  # never 'completed' or 'running'
    if record.status == "failed":  # the usual case: gloo reports the lost peer before torchrun's SIGTERM
        assert record.error.startswith("another process of this 2-process run stopped"), record.error
    assert record.config["world_size"] == 2 and record.steps >= steps
    run_dir = Path(record.config["checkpoint_dir"])
    assert all(torch.load(p, weights_only=True)["world_size"] == 2 for p in run_dir.glob("step-*.pt"))

    # the same run on one process: refused in one line, nothing written
    single = subprocess.run(
        [sys.executable, "-m", "hasten", "train", "toy", "--resume", record.run_id],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert single.returncode == 2
    assert single.stderr.strip().splitlines() == [
        f"error: run {record.run_id} was trained on 2 process(es), this launch has 1"
        " (resume it with torchrun --nproc_per_node 2 (in all), or start a new run)"
    ]
    unchanged = RunStore(store_path).get_run(record.run_id)
    assert (unchanged.status, unchanged.steps) == (record.status, record.steps)

    # on two processes it continues to the end
    finished(torchrun(*args[:4], "--resume", record.run_id, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    done = RunStore(store_path).get_run(record.run_id)
    assert done.status == "completed" and done.steps == 15 * 32 and done.samples == 15 * 4096
    assert done.env["communication_s"] > 0
