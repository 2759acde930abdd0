"""Resuming with input that does not fit the run: refused in one line, or recovered when it can be."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from hasten.cli.main import cli
from hasten.store.store import RunStore
from hasten.trainer.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_error_line(result) -> str:
    errors = [line for line in result.stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """One short run, checkpointed, then marked interrupted: a run that can be resumed."""
    folder = tmp_path_factory.mktemp("template")
    result = invoke(
        "train",
        "toy",
        "--duration",
        "4ep",
        "--checkpoint-interval",
        "32ba",
        "--store",
        str(folder / "hasten.db"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def interrupted(template, tmp_path, monkeypatch) -> tuple[Path, str]:
    """A private copy of the template store whose run is 'interrupted' at its last checkpoint."""
    folder = tmp_path / "runs"
    shutil.copytree(template, folder)
    store = RunStore(folder / "hasten.db")
    run = store.list_runs()[0]
    config = {**run.config, "checkpoint_dir": str(folder / "checkpoints" / run.run_id)}
    store.update_run(run.run_id, status="interrupted", config=config)
    monkeypatch.setenv("HASTEN_STORE", str(folder / "hasten.db"))
    return folder, run.run_id


@pytest.mark.parametrize(
    "option, value, recorded", [("--seed", "5", "0"), ("--duration", "8ep", "4ep"), ("--precision", "bf16", "fp32")]
)
def test_resume_refuses_a_changed_setting(interrupted, option, value, recorded):
    folder, run_id = interrupted
    result = invoke("train", "toy", "--resume", run_id, option, value)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert f"recorded with {option} {recorded}, not {value}" in line and f"leave out {option}" in line
    assert RunStore(folder / "hasten.db").get_run(run_id).status == "interrupted"


def test_resume_accepts_the_same_setting_typed_again(interrupted):
    folder, run_id = interrupted
    result = invoke("train", "toy", "--resume", run_id, "--duration", "4ep", "--seed", "0")
    assert result.exit_code == 0, result.output
    assert RunStore(folder / "hasten.db").get_run(run_id).status == "completed"


def test_damaged_newest_checkpoint_falls_back_to_an_older_one(interrupted):
    folder, run_id = interrupted
    older, newest = list_checkpoints(folder / "checkpoints" / run_id)[-2:]
    newest.write_bytes(newest.read_bytes()[:1000])  # a copy cut short
    result = invoke("train", "toy", "--resume", run_id, "--json")
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and f"continuing from {older.name}" in warned[0]
    assert RunStore(folder / "hasten.db").get_run(run_id).status == "completed"


def test_no_intact_checkpoint_is_one_line(interrupted):
    folder, run_id = interrupted
    for path in list_checkpoints(folder / "checkpoints" / run_id):
        path.write_bytes(b"garbage")
    result = invoke("train", "toy", "--resume", run_id)
    assert result.exit_code == 1
    assert "none of the 2 checkpoints" in one_error_line(result) and "start a new run" in one_error_line(result)


@pytest.mark.parametrize("damage", ["drop rng", "drop model", "bad python rng", "bad torch rng", "bad timestamp"])
def test_checkpoint_that_loads_but_is_malformed_is_one_line(interrupted, damage):
    folder, run_id = interrupted
    for path in list_checkpoints(folder / "checkpoints" / run_id):  # every copy, so no fallback rescues it
        payload = load_checkpoint(path)
        if damage.startswith("drop"):
            del payload[damage.split()[1]]
        elif damage == "bad python rng":
            payload["rng"]["python"]["state"] = torch.zeros(3, dtype=torch.int64)
        elif damage == "bad torch rng":
            payload["rng"]["torch"] = torch.zeros(5, dtype=torch.uint8)
        else:
            payload["timestamp"] = {"epoch": "x"}
        save_checkpoint(path, {k: v for k, v in payload.items() if k not in ("format", "version")})
    result = invoke("train", "toy", "--resume", run_id)
    assert result.exit_code == 1, result.output
    assert "checkpoint" in one_error_line(result)
    assert RunStore(folder / "hasten.db").get_run(run_id).status == "interrupted"  # nothing recorded over it


def test_resume_from_another_working_directory(tmp_path, monkeypatch):
    """Checkpoint folders are recorded absolute; an old record's relative one is found beside the store."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    assert (
        invoke(
            "train", "toy", "--duration", "4ep", "--checkpoint-interval", "32ba", "--store", "runs/hasten.db"
        ).exit_code
        == 0
    )
    store = RunStore(tmp_path / "a" / "runs" / "hasten.db")
    run = store.list_runs()[0]
    assert Path(run.config["checkpoint_dir"]).is_absolute()
    relative = {**run.config, "checkpoint_dir": f"runs/checkpoints/{run.run_id}"}  # as older hasten wrote it
    store.update_run(run.run_id, status="interrupted", config=relative)
    monkeypatch.chdir(tmp_path / "b")
    result = invoke("train", "toy", "--resume", run.run_id, "--store", str(store.path))
    assert result.exit_code == 0, result.output
    assert store.get_run(run.run_id).status == "completed"
