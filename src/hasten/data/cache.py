"""Decoded data sets kept as uint8 arrays, so JPEG decoding happens once per machine.

An entry is keyed by a name and the checksum of the files it was decoded from, so a
changed source can never be served from a stale cache. Entries are written atomically;
an unreadable entry is decoded again rather than trusted.
"""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from hasten.data.files import cache_root

FORMAT_VERSION = 1
Arrays = dict[str, np.ndarray]


def cache_path(name: str, source_digest: str) -> Path:
    return cache_root() / "decoded" / f"{name}-v{FORMAT_VERSION}-{source_digest[:16]}.npz"


def cached_arrays(name: str, source_digest: str, build: Callable[[], Arrays]) -> Arrays:
    """The arrays ``build()`` returns, from the cache when present; stored after the first build."""
    path = cache_path(name, source_digest)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {key: stored[key] for key in stored.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            warnings.warn(f"decoded cache {path} is unreadable ({exc}); decoding again", stacklevel=2)
    arrays = build()
    try:
        _save(path, arrays)
    except OSError as exc:  # a read-only cache costs time, not correctness
        warnings.warn(f"could not write the decoded cache {path} ({exc}); the next run decodes again", stacklevel=2)
    return arrays


def _save(path: Path, arrays: Arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)  # type: ignore[arg-type]  # numpy's stub mistakes ** arrays for allow_pickle
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
