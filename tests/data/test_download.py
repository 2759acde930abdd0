"""Downloads against a local HTTP server (never the internet), and extraction that cannot escape."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from hasten.data import files
from hasten.data.download import download, safe_extract
from hasten.data.files import DataFile
from hasten.errors import DataError

PAYLOAD = bytes(range(256)) * 64


def spec(base: str, name: str = "payload.bin", content: bytes = PAYLOAD, **kwargs) -> DataFile:
    return DataFile(
        f"things/{name}",
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        urls=(f"{base}/{name}",),
        **kwargs,
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_download_writes_the_verified_file(server: tuple[str, Path], tmp_path: Path) -> None:
    base, served = server
    (served / "payload.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "payload.bin"
    assert download(spec(base), dest, quiet=True) == dest
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(dest.parent) == ["payload.bin"]  # no temporary file left behind


def test_wrong_content_is_refused_and_nothing_is_kept(server: tuple[str, Path], tmp_path: Path) -> None:
    base, served = server
    (served / "payload.bin").write_bytes(PAYLOAD[::-1])  # same size, other bytes
    dest = tmp_path / "out" / "payload.bin"
    with pytest.raises(DataError, match="fails its sha256 check"):
        download(spec(base), dest, quiet=True)
    assert leftovers(dest.parent) == []


def test_short_download_is_refused(server: tuple[str, Path], tmp_path: Path) -> None:
    base, served = server
    (served / "payload.bin").write_bytes(PAYLOAD[:1000])
    with pytest.raises(DataError, match="gave 1,000 bytes, expected 16,384"):
        download(spec(base), tmp_path / "payload.bin", quiet=True)


def test_next_address_is_tried_when_one_fails(server: tuple[str, Path], tmp_path: Path) -> None:
    base, served = server
    (served / "payload.bin").write_bytes(PAYLOAD)
    mirrored = DataFile(
        "things/payload.bin",
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        urls=(f"{base}/missing.bin", f"{base}/payload.bin"),
    )
    assert download(mirrored, tmp_path / "payload.bin", quiet=True).read_bytes() == PAYLOAD


def test_fetch_downloads_into_the_user_cache(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, served = server
    (served / "payload.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("HASTEN_DATA", raising=False)
    monkeypatch.delenv(files.OFFLINE_ENV, raising=False)
    path = files.fetch(spec(base), tmp_path / "empty")
    assert path == tmp_path / "xdg" / "hasten" / "things" / "payload.bin"
    (served / "payload.bin").unlink()  # the second fetch must not need the network
    assert files.fetch(spec(base), tmp_path / "empty") == path


def test_unreachable_server_gives_the_missing_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(files.OFFLINE_ENV, raising=False)
    dead = DataFile("things/payload.bin", sha256="0" * 64, urls=("http://127.0.0.1:9/payload.bin",))
    with pytest.raises(DataError, match=r"things data not found: .* could not download payload.bin"):
        files.fetch(dead, tmp_path / "empty")


# ------------------------------------------------------------------ extraction
def make_tar(path: Path, members: list[tarfile.TarInfo], gz: bool = True) -> Path:
    with tarfile.open(path, "w:gz" if gz else "w") as archive:
        for member in members:
            data = b"x" * member.size if member.isfile() else None
            archive.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


def regular(name: str, size: int = 3) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def test_safe_extract_writes_regular_files(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "ok.tar.gz", [regular("top/a.txt"), regular("top/sub/b.txt", 5)])
    dest = safe_extract(archive, tmp_path / "dest")
    assert (dest / "top" / "a.txt").read_bytes() == b"xxx"
    assert (dest / "top" / "sub" / "b.txt").read_bytes() == b"xxxxx"


@pytest.mark.parametrize("name", ["../escape.txt", "top/../../escape.txt", "/absolute-escape.txt"])
def test_safe_extract_refuses_paths_that_escape(tmp_path: Path, name: str) -> None:
    archive = make_tar(tmp_path / "bad.tar.gz", [regular("top/fine.txt"), regular(name)])
    with pytest.raises(DataError, match="points outside the extraction folder"):
        safe_extract(archive, tmp_path / "deep" / "dest")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "deep" / "escape.txt").exists()
    assert not (tmp_path / "deep" / "dest").exists()  # nothing half-extracted
    assert leftovers(tmp_path / "deep") == []


def test_safe_extract_refuses_links(tmp_path: Path) -> None:
    link = tarfile.TarInfo("top/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = make_tar(tmp_path / "link.tar", [link], gz=False)
    with pytest.raises(DataError, match="is a link or device"):
        safe_extract(archive, tmp_path / "dest")


def test_safe_extract_reports_a_damaged_archive(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "ok.tar.gz", [regular("top/a.txt", 20_000)])
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(archive.read_bytes()[:60])
    with pytest.raises(DataError, match="cannot extract"):
        safe_extract(damaged, tmp_path / "dest")
