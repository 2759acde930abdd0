"""One registry for everything found by name (methods, workloads).

Entries register themselves where they are defined (a decorator or a ``register`` call in
their own module). The package lists those modules explicitly in ``MODULES``; the registry
imports exactly them on first use, so a helper module added beside them never creates an
entry by accident, and adding one is: write the module, register in it, add its name.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Callable, Generic, TypeVar

from hasten.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry, filled by the modules ``package.MODULES`` names.

    ``unknown_hint(close, names)`` writes the hint of the error for an unknown name, from
    the close matches and every known name.
    """

    def __init__(self, kind: str, package: str, unknown_hint: Callable[[list[str], list[str]], str]) -> None:
        self.kind = kind
        self.package = package
        self.unknown_hint = unknown_hint
        self._entries: dict[str, T] = {}
        self._loaded = False

    def add(self, name: str, entry: T, *, same: Callable[[T, T], bool] = lambda a, b: a is b) -> None:
        """Add ``entry``; registering a different entry under a taken name is a bug, re-importing is not."""
        if name in self._entries and not same(self._entries[name], entry):
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def load(self) -> None:
        """Import the package's listed modules once; each registers its entries."""
        if self._loaded:
            return
        package = importlib.import_module(self.package)
        for module in package.MODULES:
            importlib.import_module(f"{self.package}.{module}")
        self._loaded = True

    def names(self) -> list[str]:
        self.load()
        return sorted(self._entries)

    def entries(self) -> list[T]:
        self.load()
        return [self._entries[name] for name in sorted(self._entries)]

    def get(self, name: str) -> T:
        self.load()
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=3)
            raise ConfigError(f"unknown {self.kind} {name!r}", self.unknown_hint(close, sorted(self._entries)))
        return self._entries[name]
