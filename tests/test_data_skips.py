"""A machine with only part of the data (MNIST and Tiny Shakespeare, no CIFAR-10) skips, with its
reason, the tests that need the missing set, and still fails on real errors."""

import os
import subprocess
import sys
from pathlib import Path

from hasten.errors import DataError
from tests.conftest import REPO, find_shared_data, missing_dataset


def _partial(tmp_path: Path) -> Path:
    shared = find_shared_data()
    partial = tmp_path / "data"
    partial.mkdir()
    for folder in ("mnist", "tinyshakespeare"):
        (partial / folder).symlink_to(shared / folder) if shared else (partial / folder).mkdir()
    return partial


def test_a_missing_archive_of_an_absent_data_set_is_a_skip(tmp_path):
    partial = _partial(tmp_path)
    error = FileNotFoundError(2, "No such file or directory", str(partial / "cifar10-jpeg" / "test.tar"))
    assert "CIFAR-10 is not in" in missing_dataset(error, partial)
    assert "CIFAR-10" in missing_dataset(DataError("CIFAR-10 data not found: looked for ..."), partial)


def test_other_errors_and_present_data_sets_still_fail(tmp_path):
    partial = _partial(tmp_path)
    if find_shared_data() is not None:  # mnist is present: its missing file is a real error
        assert missing_dataset(FileNotFoundError(2, "gone", str(partial / "mnist" / "x.gz")), partial) is None
    assert missing_dataset(ValueError("cifar10-jpeg"), partial) is None
    assert missing_dataset(FileNotFoundError(2, "gone", "/elsewhere/file.txt"), partial) is None


def test_pytest_skips_cifar_tests_when_only_mnist_and_shakespeare_are_there(tmp_path):
    partial = _partial(tmp_path)
    env = {**os.environ, "HASTEN_DATA": str(partial), "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/trainer/test_guard.py::test_divergence_in_the_last_update_is_recorded_as_diverged",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "1 skipped" in done.stdout, done.stdout[-2000:]
    assert "CIFAR-10 is not in" in done.stdout
