"""A run whose process is gone reads as 'interrupted', never 'running' forever."""

import platform
import subprocess
import sys

from hasten.store.liveness import is_dead, process_identity
from hasten.store.records import RunRecord
from hasten.store.store import RunStore


def ended_process_identity() -> dict:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return {"host": platform.node(), "pid": child.pid, "pid_started": None}


def test_this_process_is_alive_and_an_ended_one_is_dead():
    assert not is_dead(process_identity())
    assert is_dead(ended_process_identity())


def test_a_recycled_pid_is_dead_and_unknown_owners_are_not_judged():
    recycled = {**process_identity(), "pid_started": (process_identity()["pid_started"] or 0) + 1}
    if process_identity()["pid_started"] is not None:  # Linux: the start time tells a recycled pid apart
        assert is_dead(recycled)
    assert not is_dead({**ended_process_identity(), "host": "another-host"})
    assert not is_dead({})
    assert not is_dead({"host": platform.node(), "pid": "12"})


def test_store_reads_a_dead_running_run_as_interrupted(tmp_path):
    store = RunStore(tmp_path / "s.db")
    store.create_run(RunRecord(run_id="dead", workload="toy", env=ended_process_identity()))
    store.create_run(RunRecord(run_id="live", workload="toy", env=process_identity()))
    assert store.get_run("dead").status == "interrupted" and "ended without finishing" in store.get_run("dead").error
    assert store.get_run("live").status == "running"
    assert [r.run_id for r in store.list_runs(status="interrupted")] == ["dead"]
    assert [r.run_id for r in store.list_runs(status="running")] == ["live"]
