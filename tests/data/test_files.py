"""Finding and verifying data files: search order, checksums, clear errors, the bundled text."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hasten.data import cifar, files, mnist, text
from hasten.data.files import DataFile
from hasten.errors import DataError

CONTENT = b"hasten test file\n" * 10


def spec_for(content: bytes = CONTENT, **kwargs) -> DataFile:
    return DataFile("things/file.bin", sha256=hashlib.sha256(content).hexdigest(), size=len(content), **kwargs)


def put(root: Path, content: bytes = CONTENT) -> Path:
    path = root / "things" / "file.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Three empty places: an explicit data dir, $HASTEN_DATA and the user cache."""
    places = {name: tmp_path / name for name in ("explicit", "env", "xdg")}
    for place in places.values():
        place.mkdir()
    monkeypatch.setenv("HASTEN_DATA", str(places["env"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(places["xdg"]))
    monkeypatch.setenv(files.OFFLINE_ENV, "1")
    return places


def test_search_order_is_data_dir_then_env_then_cache(roots: dict[str, Path]) -> None:
    assert files.search_roots(roots["explicit"]) == [roots["explicit"], roots["env"], roots["xdg"] / "hasten"]
    cached = put(roots["xdg"] / "hasten")
    assert files.fetch(spec_for(), roots["explicit"]) == cached
    from_env = put(roots["env"])
    assert files.fetch(spec_for(), roots["explicit"]) == from_env
    explicit = put(roots["explicit"])
    assert files.fetch(spec_for(), roots["explicit"]) == explicit


def test_xdg_cache_home_falls_back_to_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert files.cache_root() == tmp_path / ".cache" / "hasten"


def test_wrong_checksum_is_one_clear_error(roots: dict[str, Path]) -> None:
    put(roots["explicit"], CONTENT.replace(b"test", b"TEST"))  # same size, different bytes
    with pytest.raises(DataError, match="fails its sha256 check") as caught:
        files.fetch(spec_for(), roots["explicit"])
    message = str(caught.value)
    assert "\n" not in message and "file.bin" in message and "delete" in message


def test_truncated_file_is_named_truncated(roots: dict[str, Path]) -> None:
    put(roots["explicit"], CONTENT[:-7])
    with pytest.raises(DataError, match=r"has 163 bytes, expected 170: it is truncated"):
        files.fetch(spec_for(), roots["explicit"])


def test_a_corrupt_copy_is_not_skipped_for_a_good_one_further_down(roots: dict[str, Path]) -> None:
    put(roots["explicit"], b"garbage")
    put(roots["env"])
    with pytest.raises(DataError, match="explicit"):
        files.fetch(spec_for(), roots["explicit"])


def test_md5_is_checked_when_no_sha256_is_known(roots: dict[str, Path]) -> None:
    put(roots["explicit"])
    good = DataFile("things/file.bin", md5=hashlib.md5(CONTENT).hexdigest())
    assert files.fetch(good, roots["explicit"]).exists()
    with pytest.raises(DataError, match="md5"):
        files.fetch(DataFile("things/file.bin", md5="0" * 32), roots["explicit"])


def test_missing_and_offline_says_where_to_put_which_file(roots: dict[str, Path]) -> None:
    spec = spec_for(urls=("http://127.0.0.1:9/never",))
    with pytest.raises(DataError) as caught:
        files.fetch(spec, roots["explicit"], dataset="Things")
    message = str(caught.value)
    assert "\n" not in message
    assert "Things data not found" in message and "things/file.bin" in message
    for place in (roots["explicit"], roots["env"], roots["xdg"] / "hasten"):
        assert str(place) in message
    assert "HASTEN_OFFLINE" in message and "--data-dir" in message


def test_missing_without_any_address_says_so(roots: dict[str, Path]) -> None:
    with pytest.raises(DataError, match="no official download address"):
        files.fetch(spec_for(), roots["explicit"])


def test_missing_mnist_offline_names_the_files(roots: dict[str, Path]) -> None:
    with pytest.raises(DataError, match="MNIST data not found.*mnist/train-images-idx3-ubyte.gz"):
        mnist.load_mnist("train", roots["explicit"])


def test_missing_cifar_offline_names_every_accepted_layout(roots: dict[str, Path]) -> None:
    with pytest.raises(DataError) as caught:
        cifar.load_cifar10("test", roots["explicit"])
    message = str(caught.value)
    for wanted in ("cifar10-jpeg/test.tar", "cifar-10-batches-py/", "cifar-10-python.tar.gz"):
        assert wanted in message


def test_bundled_shakespeare_is_used_before_any_download(roots: dict[str, Path], data_dir: Path) -> None:
    path = files.fetch(text.TINY_SHAKESPEARE, roots["explicit"])
    assert path == roots["xdg"] / "hasten" / "tinyshakespeare" / "input.txt"
    assert path.read_bytes() == (data_dir / "tinyshakespeare" / "input.txt").read_bytes()
    assert files.fetch(text.TINY_SHAKESPEARE, roots["explicit"]) == path  # now found in the cache
    assert len(text.load_tiny_shakespeare(roots["explicit"]).vocab) == 65


@pytest.mark.parametrize(
    "spec",
    [*mnist.FILES["train"], *mnist.FILES["test"], *cifar.JPEG_FILES.values(), text.TINY_SHAKESPEARE],
    ids=lambda spec: spec.path,
)
def test_shared_copies_match_their_published_checksums(spec: DataFile, data_dir: Path) -> None:
    path = data_dir / spec.path
    assert files.verify(path, spec) == path
    assert files.digest(path) == spec.sha256
    assert path.stat().st_size == spec.size
