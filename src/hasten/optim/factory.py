"""How a run's optimizer is chosen: the workload's factory, then methods that replace or wrap it.

The Trainer builds the optimizer from a factory after INIT surgery, so it sees the final
parameters. Methods change the optimizer only through ``replace_optimizer`` (Muon, FlashOptim:
a new optimizer read from the baseline's settings) and ``wrap_optimizer`` (SAM, Lookahead), at
INIT; ``build_optimizer`` is the one place the chain is finally built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

if TYPE_CHECKING:
    from hasten.core.state import State

OptimizerFactory = Callable[[nn.Module], torch.optim.Optimizer]


def default_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer a Trainer builds when given none (methods that wrap or replace it reuse this)."""
    return torch.optim.AdamW(model.parameters(), lr=1e-3)


def baseline_optimizer(state: "State", model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer the run would use without replacements: the given instance or the factory's product."""
    if state.optimizer is not None:
        return state.optimizer
    return (state.optimizer_factory or default_optimizer)(model)


def replace_optimizer(
    state: "State", build: Callable[[nn.Module, torch.optim.Optimizer], torch.optim.Optimizer]
) -> None:
    """At INIT: the run's optimizer becomes ``build(model, baseline)``, where ``baseline`` is the
    optimizer the run would otherwise have used (built only to read its groups and settings)."""
    given, factory = state.optimizer, state.optimizer_factory or default_optimizer

    def replaced(model: nn.Module) -> torch.optim.Optimizer:
        return build(model, given if given is not None else factory(model))

    state.optimizer = None
    state.optimizer_factory = replaced


def wrap_optimizer(state: "State", wrap: Callable[[torch.optim.Optimizer], torch.optim.Optimizer]) -> None:
    """At INIT, wrap the optimizer the run will use: a given instance now, a factory's product
    when it is built (so the wrapper is in place before a checkpoint is loaded into it)."""
    if state.optimizer is not None:
        state.optimizer = wrap(state.optimizer)
        return
    factory: OptimizerFactory = state.optimizer_factory or default_optimizer
    state.optimizer_factory = lambda model: wrap(factory(model))


def build_optimizer(state: "State") -> torch.optim.Optimizer:
    """Build the run's optimizer (once, after INIT) from the chain the methods left."""
    if state.optimizer is None:
        state.optimizer = (state.optimizer_factory or default_optimizer)(state.model)
    return state.optimizer
