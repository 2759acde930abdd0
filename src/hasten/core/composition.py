"""Composition rules, checked when the Trainer starts so conflicts fail fast, not mid-run."""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

from hasten.core.algorithm import EXCLUSIVE_TOUCHES, Algorithm
from hasten.errors import ConflictError


def check_composition(algorithms: Sequence[Algorithm]) -> None:
    """Raise ``ConflictError`` naming both methods and the way out, for the first conflict found.

    Rules, in order: a method given twice; a declared conflict (either side's
    ``conflicts``); two methods that both rewrite an exclusive part (targets); one
    method requiring a capability another removes.
    """
    names = [a.name for a in algorithms]
    for name in names:
        if names.count(name) > 1:
            raise ConflictError(f"method {name!r} is given twice", "give each method once, with all its parameters")
    for first, second in combinations(algorithms, 2):
        _check_pair(first, second)
        _check_pair(second, first)


def _check_pair(a: Algorithm, b: Algorithm) -> None:
    conflicts = getattr(a, "conflicts", {}) or {}
    if b.name in conflicts:
        raise ConflictError(f"methods {a.name!r} and {b.name!r} conflict: {conflicts[b.name]}", "drop one of them")
    shared = set(a.touches) & set(b.touches) & EXCLUSIVE_TOUCHES
    if shared:
        what = ", ".join(sorted(shared))
        raise ConflictError(
            f"methods {a.name!r} and {b.name!r} both rewrite the {what}",
            "use one of them (or a single method that does both)",
        )
    missing = set(a.requires) & set(b.removes)
    if missing:
        what = ", ".join(sorted(missing))
        raise ConflictError(
            f"method {a.name!r} needs {what}, which {b.name!r} takes away",
            f"drop {b.name!r} or {a.name!r}",
        )
