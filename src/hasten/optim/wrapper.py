"""Optimizers around an optimizer (SAM, Lookahead) that still look like one optimizer.

A wrapper's ``param_groups`` and ``state`` *are* its inner optimizer's, read through on
every access, so the Trainer's schedule (``group["lr"]``, ``initial_lr``), ``zero_grad``
and torch LR schedulers reach the inner optimizer unchanged, even after
``load_state_dict`` replaces the inner lists. State dicts nest (``{"base", "wrapper"}``),
so one checkpoint restores every layer exactly. Wrappers stack:
``Lookahead(SAM(Muon(...)))``; ``innermost`` unwraps them.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

__all__ = ["OptimizerWrapper", "innermost"]


class OptimizerWrapper(torch.optim.Optimizer):
    """Base class: subclasses implement ``step`` and, if they keep state of their own,
    ``wrapper_state_dict`` / ``load_wrapper_state_dict``."""

    def __init__(self, base_optimizer: torch.optim.Optimizer) -> None:
        if not isinstance(base_optimizer, torch.optim.Optimizer):
            raise TypeError(f"{type(self).__name__} wraps a torch optimizer, got {type(base_optimizer).__name__}")
        # torch's constructor sets up hooks and step profiling; the groups it builds from these
        # copies are dropped as soon as ``base_optimizer`` is attached (see the properties below).
        super().__init__([dict(group) for group in base_optimizer.param_groups], {})
        self.base_optimizer = base_optimizer
        self.__dict__.pop("_own_param_groups", None)
        self.__dict__.pop("_own_state", None)
        self.defaults = base_optimizer.defaults

    # The inner optimizer's groups and state, always (torch's load_state_dict replaces them).
    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        base = self.__dict__.get("base_optimizer")
        return base.param_groups if base is not None else self.__dict__.setdefault("_own_param_groups", [])

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        base = self.__dict__.get("base_optimizer")
        if base is None:
            self.__dict__["_own_param_groups"] = value
        else:
            base.param_groups = value

    @property  # type: ignore[override]
    def state(self) -> Any:
        base = self.__dict__.get("base_optimizer")
        return base.state if base is not None else self.__dict__.setdefault("_own_state", {})

    @state.setter
    def state(self, value: Any) -> None:
        base = self.__dict__.get("base_optimizer")
        if base is None:
            self.__dict__["_own_state"] = value
        else:
            base.state = value

    @property
    def requires_closure(self) -> bool:
        """A wrapper needs the Trainer's closure exactly when something inside it does."""
        return bool(getattr(self.base_optimizer, "requires_closure", False))

    def base_step(self, closure: Callable[[], torch.Tensor] | None = None) -> Any:
        """Step the inner optimizer, handing it the closure only if it asked for one
        (torch's own optimizers would otherwise re-run it and double the gradient)."""
        if closure is not None and getattr(self.base_optimizer, "requires_closure", False):
            return self.base_optimizer.step(closure)  # type: ignore[arg-type]  # torch types closures as -> float
        return self.base_optimizer.step()

    def params(self) -> list[torch.Tensor]:
        """Every parameter, in group order (the order state dicts use)."""
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def wrapper_state_dict(self) -> dict[str, Any]:
        return {}

    def load_wrapper_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return {"base": self.base_optimizer.state_dict(), "wrapper": self.wrapper_state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        if not isinstance(state_dict, dict) or set(state_dict) != {"base", "wrapper"}:
            raise ValueError(f"{type(self).__name__} expects a state dict with 'base' and 'wrapper' entries")
        self.base_optimizer.load_state_dict(state_dict["base"])
        self.load_wrapper_state_dict(state_dict["wrapper"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_optimizer!r})"


def innermost(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The optimizer that actually updates the weights, under any wrappers."""
    while isinstance(optimizer, OptimizerWrapper):
        optimizer = optimizer.base_optimizer
    return optimizer
