"""Finding data files, and proving they are the right ones.

Every known file is a ``DataFile``: its path under a data root, its checksum and where it
can be had. ``fetch`` looks in this order and verifies whatever it finds:

1. the ``data_dir`` the caller passed (``--data-dir`` on the CLI),
2. ``$HASTEN_DATA``,
3. the per-user cache (``$XDG_CACHE_HOME/hasten``, else ``~/.cache/hasten``),
4. a copy bundled inside the package (only Tiny Shakespeare is small enough),
5. a download from the official address into the cache (skipped when ``HASTEN_OFFLINE=1``).

A file that is found but fails its checksum is an error, never silently skipped: a corrupt
copy in the place you pointed at is something you want to hear about.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from hasten.errors import DataError

OFFLINE_ENV = "HASTEN_OFFLINE"


@dataclass(frozen=True)
class DataFile:
    """A file of a data set: ``path`` relative to a data root, its checksums and its sources.

    ``sha256`` is checked when known, else ``md5`` (some official files only publish md5).
    ``bundled`` names a gzip file in ``hasten/data/bundled`` holding the exact bytes.
    """

    path: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    urls: tuple[str, ...] = ()
    bundled: str | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name


def cache_root() -> Path:
    """The per-user cache: downloads and decoded arrays live here."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hasten"


def search_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where data files are looked for, in order (duplicates removed)."""
    roots: list[Path] = []
    for candidate in (data_dir, os.environ.get("HASTEN_DATA"), cache_root()):
        if candidate:
            path = Path(candidate).expanduser()
            if path not in roots:
                roots.append(path)
    return roots


def find(relative: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first existing ``root/relative`` over ``search_roots``, or None."""
    for root in search_roots(data_dir):
        path = root / relative
        if path.exists():
            return path
    return None


def digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def verify(path: Path, spec: DataFile) -> Path:
    """Check size and checksum; a mismatch raises one ``DataError`` naming the file and the fix."""
    size = path.stat().st_size
    fix = f"delete {path} and fetch it again (or point --data-dir at a good copy)"
    if spec.size is not None and size != spec.size:
        kind = "truncated" if size < spec.size else "the wrong file"
        raise DataError(f"{path} has {size:,} bytes, expected {spec.size:,}: it is {kind}", fix)
    if spec.sha256 or spec.md5:
        algorithm, expected = ("sha256", spec.sha256) if spec.sha256 else ("md5", spec.md5 or "")
        actual = digest(path, algorithm)
        if actual != expected:
            raise DataError(
                f"{path} fails its {algorithm} check (got {actual[:12]}..., expected {expected[:12]}...)", fix
            )
    return path


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def missing_error(dataset: str, relatives: Iterable[str], data_dir: str | os.PathLike | None, why: str) -> DataError:
    """The one error for 'not found anywhere': what was looked for, where, and where to put it."""
    wanted = ", ".join(relatives)
    places = ", ".join(str(r) for r in search_roots(data_dir))
    return DataError(
        f"{dataset} data not found: looked for {wanted} under {places}; {why}",
        "put the files under one of those folders (or pass --data-dir / set HASTEN_DATA); see docs/data.md",
    )


def fetch(spec: DataFile, data_dir: str | os.PathLike | None = None, *, dataset: str = "") -> Path:
    """A verified local path for ``spec``: found, unbundled or downloaded (see the module doc)."""
    found = find(spec.path, data_dir)
    if found is not None:
        return verify(found, spec)
    if spec.bundled:
        return unbundle(spec)
    dataset = dataset or spec.path.split("/")[0]
    if not spec.urls:
        raise missing_error(dataset, [spec.path], data_dir, "it has no official download address")
    if offline():
        raise missing_error(dataset, [spec.path], data_dir, f"downloads are off ({OFFLINE_ENV} is set)")
    from hasten.data.download import download

    try:
        return download(spec, cache_root() / spec.path)
    except DataError as exc:
        if exc.problem.startswith("could not download"):
            raise missing_error(dataset, [spec.path], data_dir, exc.problem) from exc
        raise


def unbundle(spec: DataFile) -> Path:
    """Decompress a bundled copy into the cache (a temporary folder if the cache is read-only)."""
    resource = importlib.resources.files("hasten.data") / "bundled" / str(spec.bundled)
    try:
        data = gzip.decompress(resource.read_bytes())
    except (OSError, EOFError) as exc:
        raise DataError(f"bundled copy of {spec.name} is damaged ({exc})", "reinstall hasten") from exc
    if spec.sha256 and hashlib.sha256(data).hexdigest() != spec.sha256:
        raise DataError(f"bundled copy of {spec.name} fails its sha256 check", "reinstall hasten")
    for root in (cache_root(), Path(tempfile.gettempdir()) / f"hasten-{os.getuid() if hasattr(os, 'getuid') else 0}"):
        try:
            return write_atomic(root / spec.path, data)
        except OSError:
            continue
    raise DataError(f"cannot write {spec.name} to the cache {cache_root()}", "make it writable or set XDG_CACHE_HOME")


def write_atomic(path: Path, data: bytes) -> Path:
    """Write to a temporary file beside ``path``, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
