"""Model surgery shared by the model-component methods.

Three jobs, done once here so every method behaves the same on models it has never seen:

- **find and replace modules** by type *or* by predicate ``(name, module) -> bool``
  (``replace_modules``), counting what was replaced, placing each new module on its
  predecessor's device and dtype, and keeping an existing optimizer in sync;
- **probe a model** with one forward pass to find its residual parts
  (``find_residual_branches``): branches ``M`` in ``x + M(x)`` and whole blocks
  ``x -> x + f(x)``; this is how stochastic depth and residual squeeze-excite find their
  targets without knowing the model's classes;
- **undo** exactly-removable surgery for export (``unwrap_modules``).

Optimizers: the Trainer builds its optimizer from a factory *after* the INIT surgery,
so surgery normally happens before any optimizer exists. When one already exists, pass
it: parameters that surgery removes leave it (with their state) and new ones join the
param group of the module they replace.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence, Union

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError

Predicate = Callable[[str, nn.Module], bool]
#: What to operate on: a module class, a tuple of classes, or a predicate ``(name, module) -> bool``.
Target = Union[type, tuple, Predicate]
Factory = Callable[[str, nn.Module], Union[nn.Module, None]]


def as_predicate(target: Target) -> Predicate:
    """Turn a class, a tuple of classes or a predicate into a predicate."""
    if isinstance(target, type) or (isinstance(target, tuple) and all(isinstance(t, type) for t in target)):
        return lambda name, module: isinstance(module, target)
    if callable(target):
        return target
    raise ConfigError(
        f"surgery target {target!r} is neither a module class nor a predicate",
        "pass a class such as nn.Conv2d, a tuple of classes, or a function (name, module) -> bool",
    )


def checked_predicate(predicate: Predicate | None) -> Predicate | None:
    """A method's optional module filter, refused early when it cannot be called."""
    if predicate is not None and not callable(predicate):
        raise ValueError("predicate must be a function (name, module) -> bool")
    return predicate


def both(types: type | tuple, predicate: Predicate | None) -> Predicate:
    """Modules of ``types`` for which ``predicate`` (if given) also holds."""
    if predicate is None:
        return as_predicate(types)
    return lambda name, module: isinstance(module, types) and bool(predicate(name, module))


def find_modules(model: nn.Module, target: Target) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` pairs matching ``target``, in definition order, each module once.
    The root module itself is never returned (it cannot be replaced in place)."""
    matches = as_predicate(target)
    return [(name, module) for name, module in model.named_modules() if name and matches(name, module)]


def replace_modules(
    model: nn.Module,
    target: Target,
    factory: Factory,
    optimizer: torch.optim.Optimizer | None = None,
) -> int:
    """Replace every module matching ``target`` with ``factory(name, module)``; return the count.

    ``factory`` may return ``None`` (or the module itself) to leave a module alone. Replaced
    modules are not searched again, so a wrapper that holds the original cannot be wrapped
    twice. A module registered under several names is replaced at all of them by one new
    module. New modules take the device and floating dtype of the module they replace.
    """
    matches = as_predicate(target)
    before = list(model.parameters())
    replaced: dict[int, nn.Module] = {}
    pairs: list[tuple[nn.Module, nn.Module]] = []
    created: set[int] = set()
    visited: set[int] = set()

    def visit(parent: nn.Module, prefix: str) -> None:
        if id(parent) in visited:
            return
        visited.add(id(parent))
        for attr, child in list(parent._modules.items()):
            if child is None or id(child) in created:
                continue
            name = f"{prefix}.{attr}" if prefix else attr
            if id(child) in replaced:  # the same module seen under another name
                setattr(parent, attr, replaced[id(child)])
                continue
            if matches(name, child):
                new = factory(name, child)
                if new is not None and new is not child:
                    _match_placement(new, child)
                    replaced[id(child)] = new
                    created.add(id(new))
                    pairs.append((child, new))
                    setattr(parent, attr, new)
                    continue
            visit(child, name)

    visit(model, "")
    if optimizer is not None and pairs:
        sync_optimizer(optimizer, before, pairs)
    return len(pairs)


def _match_placement(new: nn.Module, old: nn.Module) -> None:
    reference = next(itertools.chain(old.parameters(), old.buffers()), None)
    if reference is None:
        return
    if reference.is_floating_point():
        new.to(device=reference.device, dtype=reference.dtype)
    else:
        new.to(device=reference.device)


def sync_optimizer(
    optimizer: torch.optim.Optimizer,
    before: Sequence[nn.Parameter],
    pairs: Sequence[tuple[nn.Module, nn.Module]],
) -> None:
    """Make ``optimizer`` hold exactly the parameters that survive surgery.

    Parameters that left the model leave the optimizer, with their state; a new module's
    new parameters join the param group that held the first parameter of the module it
    replaced (group 0 if that module had none), so they share its learning rate and schedule.
    """
    groups = [_group_of(optimizer, next(old.parameters(), None)) for old, _ in pairs]
    after_ids = {id(p) for _, new in pairs for p in new.parameters()}
    gone = {id(p) for old, _ in pairs for p in old.parameters()} - after_ids
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) in gone:
                optimizer.state.pop(p, None)
        group["params"] = [p for p in group["params"] if id(p) not in gone]
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    existed = {id(p) for p in before}
    for (_, new), group in zip(pairs, groups):
        for p in new.parameters():
            if id(p) not in held and id(p) not in existed:
                group["params"].append(p)
                held.add(id(p))


def _group_of(optimizer: torch.optim.Optimizer, param: nn.Parameter | None) -> dict:
    if param is not None:
        for group in optimizer.param_groups:
            if any(p is param for p in group["params"]):
                return group
    return optimizer.param_groups[0]


class Unwrappable(nn.Module):
    """A wrapper that surgery can remove exactly: ``unwrap()`` returns what it wrapped."""

    def unwrap(self) -> nn.Module:
        raise NotImplementedError


def unwrap_modules(model: nn.Module, wrapper: type, optimizer: torch.optim.Optimizer | None = None) -> int:
    """Replace every ``wrapper`` instance (an ``Unwrappable``) by what it wraps; return the count."""
    return replace_modules(model, wrapper, lambda name, module: module.unwrap(), optimizer)  # type: ignore[operator]


def require_some(count: int, method: str, what: str, hint: str) -> int:
    """A method that changes nothing would silently mislead a benchmark: refuse instead."""
    if count == 0:
        raise ConfigError(f"{method} found no {what} in this model", hint)
    return count


class InitSurgery(Algorithm):
    """A method that changes the model once, at INIT (before the optimizer is built), and refuses
    a model where it finds nothing to change. Subclasses implement ``surgery(model) -> count``
    and set ``target`` (what it looks for) and ``hint`` (where it applies)."""

    touches = frozenset({"model"})
    data_parallel = True
    priority = 20
    target = ""
    hint = ""

    def surgery(self, model: nn.Module) -> int:
        raise NotImplementedError

    def match(self, event: Event, state: State) -> bool:
        return event is Event.INIT

    def apply(self, event: Event, state: State) -> None:
        require_some(self.surgery(state.model), self.name, self.target, self.hint)


# --------------------------------------------------------------------- probing
@dataclass(frozen=True)
class ResidualBranch:
    """A residual part of a model.

    - ``kind == "branch"``: a module whose output is added to a tensor that existed before it ran
      (``x + M(x)``). ``upstream`` names the weight-bearing modules (convolutions, linears) that
      ran on the branch before ``M`` (``x + bn2(conv2(conv1(x)))`` finds ``bn2``, upstream
      ``conv1, conv2``): skipping ``M`` alone would not skip them.
    - ``kind == "block"``: a module that returns its own input plus something (``M(x) = x + f(x)``).
    - ``kind == "post"``: a module that returns an activation of that sum (``M(x) = act(x + f(x))``,
      the classic ResNet block). ``branch_end`` is the submodule (relative name) whose output is
      ``f(x)``, where a scale can be applied before the addition; ``activation`` computes ``act``
      out of place, which is the block's output when ``f`` is skipped.
    """

    name: str
    module: nn.Module
    output_shape: tuple[int, ...]
    input_shape: tuple[int, ...] | None
    kind: str = "branch"
    upstream: tuple[str, ...] = ()
    branch_end: str | None = None
    activation: Callable[[torch.Tensor], torch.Tensor] | None = None


_ADDS = {
    torch.add,
    torch.Tensor.add,
    torch.Tensor.add_,
    torch.Tensor.__add__,
    torch.Tensor.__iadd__,
    torch.Tensor.__radd__,
}
_RELUS = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}
#: Elementwise activations a residual block may apply to its sum; recomputed out of place when needed.
_ACTIVATIONS = _RELUS | {F.relu6, F.leaky_relu, F.gelu, F.silu, F.elu, F.hardswish, F.mish}


def _out_of_place(func: Callable, args: tuple, kwargs: dict) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``func(x, *args[1:], **kwargs)`` as a function of ``x`` that never writes into ``x``."""
    if func in _RELUS:
        return torch.relu
    if any(isinstance(a, torch.Tensor) for a in (*args[1:], *kwargs.values())):
        return None
    try:
        bound = inspect.signature(func).bind(args[0], *args[1:], **kwargs)
    except (TypeError, ValueError):  # a builtin without a signature (gelu): keywords only
        return None if len(args) > 1 else functools.partial(func, **kwargs)
    first = next(iter(bound.arguments))
    options = {k: v for k, v in bound.arguments.items() if k != first}
    if "inplace" in options:
        options["inplace"] = False
    return functools.partial(func, **options)


@dataclass
class _Op:
    seq: int
    operands: tuple
    result: Any
    func: Callable = torch.add
    args: tuple = ()
    kwargs: dict | None = None


class _RecordAdds(TorchFunctionMode):
    """Records same-shape tensor additions and elementwise activations, in order."""

    def __init__(self, counter: Iterator[int]) -> None:
        super().__init__()
        self.counter = counter
        self.adds: list[_Op] = []
        self.activations: list[_Op] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if func in _ADDS and len(args) >= 2 and "alpha" not in kwargs:
            a, b = args[0], args[1]
            if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape:
                self.adds.append(_Op(next(self.counter), (a, b), result))
        elif func in _ACTIVATIONS and args and isinstance(args[0], torch.Tensor):
            self.activations.append(_Op(next(self.counter), (args[0],), result, func, tuple(args), dict(kwargs)))
        return result


@dataclass
class _Call:
    name: str
    module: nn.Module
    start: int
    inputs: tuple
    output: Any = None
    end: int = -1

    def encloses(self, other: "_Call") -> bool:
        return self.start < other.start and other.end < self.end


def find_residual_branches(model: nn.Module, example_input: Any) -> list[ResidualBranch]:
    """Residual branches and blocks of ``model``, in the order they run, found by one
    eval-mode forward that records every module call, every addition and every activation.

    A branch is the outermost module ``M`` (called once per forward) whose output is one
    operand of an addition whose other operand was already an input to some module that
    started no later than ``M``: ``x + M(x)``, ``x + attn(ln(x))``, ``out += identity``.
    A block is the innermost module whose output *is* such a sum with its own input as the
    skip operand (``ResidualBlock.forward = x + f(x)``), or an activation of that sum computed
    inside it (``out = f(x); out += x; return relu(out)``: kind ``post``). Projection shortcuts
    (both operands computed inside the block) are neither. The model's root module is never
    reported. The forward runs under ``no_grad`` in eval mode with the RNG state restored, so it
    changes nothing.
    """
    calls: list[_Call] = []
    open_calls: dict[int, list[_Call]] = {}
    counter = itertools.count()
    names = {id(m): n for n, m in model.named_modules() if n}
    handles = []

    def pre_hook(module: nn.Module, args: tuple) -> None:
        call = _Call(names[id(module)], module, next(counter), tuple(a for a in args if isinstance(a, torch.Tensor)))
        open_calls.setdefault(id(module), []).append(call)
        calls.append(call)  # noqa: F821  (ruff: `del calls` below runs after the hooks are removed)

    def post_hook(module: nn.Module, args: tuple, output: Any) -> None:
        call = open_calls[id(module)].pop()
        call.output, call.end = output, next(counter)

    for module in {id(m): m for m in model.modules() if m is not model}.values():
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    recorder = _RecordAdds(counter)
    try:
        with inspection_forward(model, example_input), recorder:
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()

    times_called: dict[int, int] = {}
    for call in calls:
        times_called[id(call.module)] = times_called.get(id(call.module), 0) + 1
    once = [c for c in calls if times_called[id(c.module)] == 1]
    first_input_at: dict[int, int] = {}
    for call in calls:
        for tensor in call.inputs:
            first_input_at.setdefault(id(tensor), call.start)

    found: dict[int, tuple[int, ResidualBranch]] = {}

    def note(call: _Call, branch: ResidualBranch) -> None:
        found.setdefault(id(call.module), (call.start, branch))

    for add in recorder.adds:
        a, b = add.operands
        result = add.result
        block = _innermost_block(once, add, recorder.activations)
        if block is not None:
            call, kind, end, activation = block
            note(
                call,
                ResidualBranch(
                    call.name,
                    call.module,
                    tuple(result.shape),
                    tuple(call.inputs[0].shape),
                    kind,
                    branch_end=end,
                    activation=activation,
                ),
            )
        # a residual *branch*: a module whose output is added to a tensor that existed before it
        for skip, branch_out in ((a, b), (b, a)):
            if skip is branch_out or id(skip) not in first_input_at:
                continue
            producers = sorted((c for c in once if c.output is branch_out), key=lambda c: c.start)
            outer = next((c for c in producers if first_input_at[id(skip)] <= c.start), None)
            if outer is None:
                continue
            shape_in = tuple(outer.inputs[0].shape) if outer.inputs else None
            upstream = tuple(
                c.name
                for c in calls
                if first_input_at[id(skip)] <= c.start < outer.start
                and not c.encloses(outer)
                and _has_weight_matrix(c.module)
            )
            note(
                outer,
                ResidualBranch(
                    outer.name, outer.module, tuple(branch_out.shape), shape_in, "branch", upstream=upstream
                ),
            )
    # keep the tensors alive until here so that identity comparisons above stay valid
    del recorder, calls
    return [branch for _, branch in sorted(found.values(), key=lambda item: item[0])]


_Block = tuple[_Call, str, Union[str, None], Union[Callable[[torch.Tensor], torch.Tensor], None]]


def _innermost_block(once: list[_Call], add: _Op, activations: list[_Op]) -> _Block | None:
    """The innermost module that takes one operand of ``add`` as its input and returns the sum
    (``block``) or an activation of it applied inside the module (``post``), with, for ``post``,
    the submodule producing the other operand (relative name) and the activation out of place."""
    a, b = add.operands
    act = next((op for op in activations if op.seq > add.seq and op.operands[0] is add.result), None)
    best: _Block | None = None
    for call in once:
        candidate: _Block
        if not call.inputs or not call.start < add.seq < call.end or not (call.inputs[0] is a or call.inputs[0] is b):
            continue
        if act is not None and act.seq < call.end:
            if call.output is not act.result:
                continue
            branch_out = b if call.inputs[0] is a else a
            ends = sorted((c for c in once if c.output is branch_out and call.encloses(c)), key=lambda c: c.start)
            activation = _out_of_place(act.func, act.args, act.kwargs or {})
            if not ends or activation is None or not ends[0].name.startswith(call.name + "."):
                continue
            candidate = (call, "post", ends[0].name[len(call.name) + 1 :], activation)
        elif call.output is add.result:
            candidate = (call, "block", None, None)
        else:
            continue
        if best is None or call.start > best[0].start:
            best = candidate
    return best


def _has_weight_matrix(module: nn.Module) -> bool:
    """A module doing the heavy work (convolution, linear, embedding): it owns a 2-D+ weight."""
    return any(p.ndim >= 2 for p in module.parameters(recurse=False))


@contextlib.contextmanager
def inspection_forward(model: nn.Module, example: Any) -> Iterator[None]:
    """Run the enclosed forward to inspect the model, changing nothing: eval mode, no grad, the
    RNG state restored afterwards, and the model's training mode put back."""
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=_cuda_devices(example)), torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _cuda_devices(example: Any) -> list[int]:
    if isinstance(example, torch.Tensor) and example.is_cuda:
        return [example.device.index or 0]
    return []


def sample_inputs(source: Any, count: int) -> torch.Tensor:
    """The first ``count`` training inputs of epoch 0 from a batch source (or any iterable of
    ``(inputs, targets)`` batches), drawn with the RNG state restored so training is unchanged."""
    if count < 1:
        raise ConfigError(f"need at least one sample, asked for {count}")
    batches: Iterable = source.batches(0) if hasattr(source, "batches") else iter(source)
    taken: list[torch.Tensor] = []
    have = 0
    with torch.random.fork_rng(devices=[]):
        for batch in batches:
            inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
            if not isinstance(inputs, torch.Tensor):
                raise ConfigError(
                    "this method needs tensor inputs to inspect the model",
                    "use a batch source that yields (tensor inputs, targets)",
                )
            taken.append(inputs[: count - have])
            have += len(taken[-1])
            if have >= count:
                break
    if not taken:
        raise ConfigError("the training data yielded no batches", "check the data set and the batch size")
    return torch.cat(taken)


def require_smaller_images_fit(
    model: nn.Module, source: Any, shrink: Callable[[int, int], tuple[int, int]], method: str, device: torch.device
) -> None:
    """Refuse, before training, a model that only accepts its training image size when ``method``
    will feed it ``shrink(H, W)`` images: one no-grad forward of one cropped sample, RNG restored."""
    example = sample_inputs(source, 1).to(device)
    if example.ndim != 4:
        return
    size = shrink(example.shape[-2], example.shape[-1])
    if tuple(example.shape[-2:]) == tuple(size):
        return
    small = example[..., : size[0], : size[1]]
    try:
        with inspection_forward(model, small):
            model(small)
    except RuntimeError as exc:
        reason = str(exc).splitlines()[0]
        raise ConfigError(
            f"{method} shrinks the training images from {example.shape[-2]}x{example.shape[-1]} to "
            f"{size[0]}x{size[1]}, and this model fails on them ({reason})",
            f"use a model that pools globally before its classifier (e.g. nn.AdaptiveAvgPool2d), or drop {method}",
        ) from None
