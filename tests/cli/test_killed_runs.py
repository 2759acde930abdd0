"""Runs killed by a signal: the store shows them 'interrupted' with the steps they had checkpointed."""

import os
import signal
import subprocess
import sys
import time

import pytest

from hasten.store.store import RunStore


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_killed_run_reads_interrupted_with_its_progress(store_path, signum):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HASTEN_STORE": str(store_path)}
    command = [
        sys.executable,
        "-m",
        "hasten.cli.main",
        "train",
        "toy",
        "--duration",
        "200ep",
        "--checkpoint-interval",
        "20ba",
    ]
    victim = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline, steps = time.time() + 240, 0
    try:
        while time.time() < deadline and steps == 0 and victim.poll() is None:
            time.sleep(0.1)
            runs = RunStore(store_path).list_runs() if store_path.exists() else []
            steps = runs[0].steps if runs else 0
        assert steps > 0, "the run never recorded a checkpointed step"
        assert RunStore(store_path).list_runs()[0].status == "running"
    finally:
        victim.send_signal(signum)
        _, stderr = victim.communicate(timeout=60)
    record = RunStore(store_path).list_runs()[0]
    assert record.status == "interrupted" and record.steps >= steps
    assert record.env["pid"] == victim.pid and record.env["host"]
    if signum is not signal.SIGKILL:  # caught: the run says so itself, and exits 128 + signal
        assert victim.returncode == 128 + signum
        assert f"stopped by {signum.name}" in record.error
        assert stderr.strip().splitlines()[-1].startswith(f"error: run {record.run_id} stopped by {signum.name}")
