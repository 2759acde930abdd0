"""Algorithms change training; they say what they touch so conflicts can be found up front."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from hasten.core.event import Event
    from hasten.core.state import State

#: What an algorithm may change. "targets" is exclusive: two algorithms that both
#: rewrite targets (MixUp and CutMix, say) cannot compose.
TOUCHES = frozenset({"batch", "targets", "loss", "model", "optimizer", "schedule", "data", "eval"})
EXCLUSIVE_TOUCHES = frozenset({"targets"})


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Algorithm:
    """A speedup method as the Trainer runs it.

    Subclasses implement ``match`` and ``apply`` and declare:

    - ``touches``: what they change (see ``TOUCHES``), for conflict checks and the card;
    - ``requires`` / ``removes``: capabilities they need or take away (e.g. selective
      backprop requires ``"fixed_input_shape"``, progressive resizing removes it);
    - ``conflicts``: other method names mapped to why they cannot compose;
    - ``priority``: lower runs earlier at BEFORE_* and plain events (and later at AFTER_*);
    - ``resumable``: False if a run using it cannot be resumed exactly; the Trainer refuses.
    - ``data_parallel``: True if it works the same on every process of a data-parallel
      (``torchrun``) run, False if it holds per-process state that would drift apart (the
      Trainer refuses it there, quoting ``data_parallel_note``). Every catalogue method says
      which; an algorithm that leaves it None is refused under torchrun too.
    """

    name: ClassVar[str] = ""
    touches: ClassVar[frozenset[str]] = frozenset()
    requires: ClassVar[frozenset[str]] = frozenset()
    removes: ClassVar[frozenset[str]] = frozenset()
    conflicts: dict[str, str] = {}  # a class default; an instance may narrow it (e.g. by its mode)
    priority: ClassVar[int] = 0
    resumable: ClassVar[bool] = True
    data_parallel: ClassVar[bool | None] = None
    data_parallel_note: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = _snake(cls.__name__)
        unknown = set(cls.touches) - TOUCHES
        if unknown:
            raise TypeError(f"{cls.__name__}.touches has unknown entries {sorted(unknown)}; use {sorted(TOUCHES)}")

    def match(self, event: "Event", state: "State") -> bool:
        raise NotImplementedError

    def apply(self, event: "Event", state: "State") -> None:
        raise NotImplementedError

    @property
    def params(self) -> dict[str, Any]:
        """Hyperparameters as plain values, for run records. Defaults to public attributes."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and _is_plain(v)}

    def state_dict(self) -> dict[str, Any]:
        """What must survive checkpoint/resume. Plain values and tensors only."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def _is_plain(value: Any) -> bool:
    if isinstance(value, (bool, int, float, str, type(None))):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return False
