"""torch.compile: trace the model's forward (and backward) into fused kernels.

Compilation is in place, as ``nn.Module.compile()`` does it: the module object, its
parameters and its state-dict keys stay the same, so checkpoints, optimizers and other
methods see the model they expect (``remove_compile`` undoes it exactly). One difference:
the compiled callable is an outer function rather than the module's own ``_call_impl``,
because torch skips frames inside ``torch.nn`` and ``nn.Sequential(...).compile()``
therefore compiles nothing.

Compilation happens on the first calls. The Algorithm charges the first ``warmup_steps``
steps of every run (and of every resumed run, which compiles afresh) to the Trainer's
``warmup`` bucket, never to training time; evaluation compiles in the ``eval`` bucket.
Before touching the model it compiles a one-line probe, so a machine that cannot compile
(no C++ compiler for inductor, say) fails at once with one clear error.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch._dynamo
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
DYNAMIC = {"auto": None, "true": True, "false": False}


def _reason(exc: BaseException) -> str:
    """The first line of the innermost cause, without torch's advice on verbose logging."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [
        line.strip()
        for line in str(exc).splitlines()
        if line.strip() and not line.strip().startswith(("Set TORCHDYNAMO_VERBOSE", "For even more"))
    ]
    return (lines[0] if lines else type(exc).__name__)[:200]


def _cannot_compile(exc: BaseException, backend: str | Callable) -> ConfigError:
    return ConfigError(
        f"torch.compile (backend {backend!r}) cannot compile on this machine: {_reason(exc)}",
        "install a C/C++ compiler (gcc) for the inductor backend, use compile:backend=eager, or drop compile",
    )


def check_compile(device: torch.device | str = "cpu", backend: str | Callable = "inductor") -> None:
    """Compile and run a one-line function on ``device``; raise ``ConfigError`` if that fails."""
    if not torch._dynamo.is_dynamo_supported():
        raise ConfigError("torch.compile is not supported on this Python/platform", "drop the compile method")
    probe = torch.compile(lambda x: torch.sin(x) * 2.0 + 1.0, backend=backend)
    try:
        probe(torch.linspace(0.0, 1.0, 8, device=device))
    except Exception as exc:  # any failure here means compilation itself is broken
        raise _cannot_compile(exc, backend) from exc


class _CompiledCall:
    """What ``nn.Module.__call__`` runs once compiled; turns a compilation failure into one line."""

    def __init__(
        self, model: nn.Module, backend: str | Callable, mode: str | None, dynamic: bool | None, fullgraph: bool
    ) -> None:
        def call(*args: Any, **kwargs: Any) -> Any:
            return model._call_impl(*args, **kwargs)

        self.backend = backend
        self.compiled = torch.compile(call, backend=backend, mode=mode, dynamic=dynamic, fullgraph=fullgraph)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.compiled(*args, **kwargs)
        except torch._dynamo.exc.BackendCompilerFailed as exc:
            raise _cannot_compile(exc, self.backend) from exc


def apply_compile(
    model: nn.Module,
    backend: str | Callable = "inductor",
    mode: str | None = None,
    dynamic: bool | None = None,
    fullgraph: bool = False,
    check: bool = True,
) -> nn.Module:
    """Compile ``model`` in place (like ``model.compile()``) and return it. With ``check``, a
    probe compile on the model's device runs first and fails with one clear error."""
    if mode not in (None, *MODES):
        raise ConfigError(f"unknown torch.compile mode {mode!r}", f"use one of {', '.join(MODES)}")
    if check:
        reference = next(model.parameters(), None)
        check_compile(reference.device if reference is not None else "cpu", backend)
    model._compiled_call_impl = _CompiledCall(model, backend, None if mode == "default" else mode, dynamic, fullgraph)
    return model


def is_compiled(model: nn.Module) -> bool:
    return getattr(model, "_compiled_call_impl", None) is not None


def remove_compile(model: nn.Module) -> nn.Module:
    """Back to eager execution (exact; nothing about the weights changed)."""
    model._compiled_call_impl = None
    return model


class Compile(Algorithm):
    """Compile at INIT, after every other surgery (priority 90); charge the first
    ``warmup_steps`` steps of each (resumed) run to the ``warmup`` bucket at FIT_START."""

    name = "compile"
    touches = frozenset({"model"})
    data_parallel = False
    data_parallel_note = "torch.compile under DistributedDataParallel is not tested in hasten"
    priority = 90

    def __init__(
        self,
        backend: str = "inductor",
        mode: str = "default",
        dynamic: str = "auto",
        fullgraph: bool = False,
        warmup_steps: int = 1,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if str(dynamic).lower() not in DYNAMIC:
            raise ValueError(f"dynamic must be one of {', '.join(DYNAMIC)} (shapes), got {dynamic!r}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.backend = backend
        self.mode = mode
        self.dynamic = str(dynamic).lower()
        self.fullgraph = fullgraph
        self.warmup_steps = warmup_steps

    def match(self, event: Event, state: State) -> bool:
        return event in (Event.INIT, Event.FIT_START)

    def apply(self, event: Event, state: State) -> None:
        if event is Event.INIT:
            check_compile(state.device, self.backend)
            apply_compile(state.model, self.backend, self.mode, DYNAMIC[self.dynamic], self.fullgraph, check=False)
        else:  # after a checkpoint loads: a resumed process compiles again
            state.warmup_steps_remaining = max(state.warmup_steps_remaining, self.warmup_steps)


CARD = MethodCard(
    name="compile",
    summary="torch.compile the model: fused kernels, less Python and launch overhead per step.",
    component="model",
    action="replace",
    mechanism="step-cost",
    bottleneck=("host", "memory"),
    paper=Paper(
        "Jason Ansel et al. (PyTorch team)",
        2024,
        "PyTorch 2: Faster Machine Learning Through Dynamic "
        "Python Bytecode Transformation and Graph Compilation (ASPLOS 2024)",
    ),
    export="exact: remove_compile(model) restores eager execution; weights and state-dict keys never change",
    not_worth_it="short runs, where compile warm-up (seconds to minutes, excluded from training time but paid in "
    "wall-clock) exceeds the savings; inputs whose shapes keep changing (progressive resizing, "
    "sequence-length warmup), which recompile; methods that flip requires_grad mid-run "
    "(layer_freezing, refused). On CPU, inductor needs a C++ compiler.",
    effect="fewer, fused kernels: less host overhead and memory traffic per step; same number of steps",
    applies_to=("any",),
    implementation_level=True,
    functional=("apply_compile", "check_compile", "remove_compile"),
)

register(CARD, Compile)
