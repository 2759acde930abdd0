"""Downloads that are verified before they are kept, and archive extraction that cannot escape.

A download streams into a temporary file beside its destination while hashing it; only a
file whose size and checksum match is renamed into place, so an interrupted or tampered
download never looks like data. Extraction accepts regular files and folders only and
refuses any member whose path would land outside the destination.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from hasten.errors import DataError

if TYPE_CHECKING:
    from hasten.data.files import DataFile  # files imports this module to fetch what is missing

TIMEOUT_S = 60
USER_AGENT = "hasten (+https://github.com/hasten)"


def download(spec: DataFile, dest: Path, *, quiet: bool = False) -> Path:
    """Fetch ``spec`` from its first working URL into ``dest``, verified; DataError if none works."""
    failures = []
    for url in spec.urls:
        try:
            return _download_one(url, spec, dest, quiet=quiet)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", None) or exc
            failures.append(f"{url}: {reason}")
    raise DataError(f"could not download {spec.name} ({'; '.join(failures) or 'no address known'})")


def _download_one(url: str, spec: DataFile, dest: Path, *, quiet: bool) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    algorithm, expected = ("sha256", spec.sha256) if spec.sha256 else ("md5", spec.md5)
    hasher = hashlib.new(algorithm) if expected else None
    handle, temporary = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    received = 0
    try:
        if not quiet:
            print(f"downloading {spec.name} from {url}", file=sys.stderr, flush=True)
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, os.fdopen(handle, "wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                received += len(block)
                if hasher is not None:
                    hasher.update(block)
        if spec.size is not None and received != spec.size:
            raise DataError(
                f"download of {spec.name} from {url} gave {received:,} bytes, expected {spec.size:,}",
                "the connection broke or the server sent another file; try again",
            )
        if hasher is not None and hasher.hexdigest() != expected:
            raise DataError(
                f"download of {spec.name} from {url} fails its {algorithm} check",
                "the server sent a different file; nothing was kept",
            )
        os.replace(temporary, dest)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return dest


def _member_target(member: tarfile.TarInfo, root: Path) -> Path | None:
    """Where ``member`` may be written under ``root``; None to skip it; DataError if it is unsafe."""
    name = PurePosixPath(member.name)
    drive = bool(name.parts) and ":" in name.parts[0]
    if name.is_absolute() or ".." in name.parts or member.name.startswith(("/", "\\")) or drive:
        raise DataError(
            f"archive member {member.name!r} points outside the extraction folder",
            "the archive is damaged or malicious; delete it",
        )
    if member.issym() or member.islnk() or member.isdev() or member.isfifo():
        raise DataError(
            f"archive member {member.name!r} is a link or device, which hasten never extracts",
            "the archive is not an official data file; delete it",
        )
    target = (root / Path(*name.parts)).resolve() if name.parts else root
    if target != root and root not in target.parents:
        raise DataError(
            f"archive member {member.name!r} points outside the extraction folder",
            "the archive is damaged or malicious; delete it",
        )
    return target if (member.isfile() or member.isdir()) else None


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a (compressed) tar into the folder ``dest``. All members are checked first and
    written into a temporary folder; each top-level entry is then renamed into ``dest``
    (replacing an older one), so what appears there is complete."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"))
    root = staging.resolve()
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            targets = [(member, _member_target(member, root)) for member in members]
            for member, target in targets:
                if target is None:
                    continue
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # regular files always have contents
                with source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
        dest.mkdir(parents=True, exist_ok=True)
        for entry in staging.iterdir():
            target = dest / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(
            f"cannot extract {archive}: {exc}", "the archive is damaged; delete it and fetch it again"
        ) from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return dest
