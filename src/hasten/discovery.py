"""Plug-in discovery: method, workload and CLI modules register themselves when imported."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def import_submodules(package: str, skip: set[str] | frozenset[str] = frozenset()) -> list[ModuleType]:
    """Import every public module of ``package`` except those named in ``skip``."""
    root = importlib.import_module(package)
    return [
        importlib.import_module(f"{package}.{info.name}")
        for info in pkgutil.iter_modules(root.__path__)
        if not info.name.startswith("_") and info.name not in skip
    ]
