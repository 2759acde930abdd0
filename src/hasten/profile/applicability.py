"""What the profiled loop is: the model's parts, its input, and the switches it already uses.

A recommendation is only useful if the method can act on this model and is not already on:
a norm method for a model without norm layers, a text method for an image model, a surgery
that would find no target, or bf16 autocast for a loop already in bf16 would each cost the user
a run to find out. The profiler looks once, cheaply (module types, one look at a batch, the
dtypes its operation census already counted) and leaves such methods out, saying why.

What each method needs is on its card (``MethodCard.needs``, ``MethodCard.applies_to``); the
features are detected here, each the way the method itself finds its targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

# The implementation switches the loop may already use, and how each is seen.
SWITCHES = {
    "precision": "bf16 autocast (matrix products run in 16-bit)",
    "compile": "torch.compile",
    "channels_last": "channels-last memory format",
}
HALF = ("bfloat16", "float16")


@dataclass(frozen=True)
class LoopFacts:
    """``features``: model features found (None: the model was not inspected); ``unchecked``:
    features that could not be looked for (a residual probe needs an example input);
    ``in_use``: catalogue methods the loop already applies, with how that was seen."""

    modality: str | None = None
    features: frozenset[str] | None = None
    unchecked: frozenset[str] = frozenset()
    in_use: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------- the model
def _is_norm(name: str, module: nn.Module) -> bool:
    from hasten.methods.low_precision_norm import is_norm

    return is_norm(name, module)


def _downsamples(module: nn.Module) -> bool:
    stride = getattr(module, "stride", 1)
    strides = stride if isinstance(stride, tuple) else (stride,)
    return isinstance(module, (nn.Conv2d, nn.MaxPool2d)) and max(strides) > 1


def _has_mlp(model: nn.Module) -> bool:
    from hasten.methods.gated_linear_units import recognise_mlp

    candidates = [m for m in model.modules() if sum(isinstance(c, nn.Linear) for c in m.children()) == 2]
    return any(recognise_mlp(m) is not None for m in candidates)


def _has_residual(model: nn.Module, example_input: Any) -> bool:
    from hasten.methods.surgery import find_residual_branches

    parameter = next(model.parameters(), None)
    if parameter is not None and isinstance(example_input, torch.Tensor):
        example_input = example_input.to(parameter.device)
    return bool(find_residual_branches(model, example_input))


def model_features(model: nn.Module, example_input: Any = None) -> tuple[frozenset[str], frozenset[str]]:
    """(features found, features that could not be checked) for ``model``.

    Types are read from the module tree; residual connections need one eval-mode forward of
    ``example_input`` that changes nothing (without one, or if it fails, they stay unchecked)."""
    modules = list(model.named_modules())
    found = set()
    if any(isinstance(m, nn.Conv2d) for _, m in modules):
        found.add("conv2d")
    if any(_downsamples(m) for _, m in modules):
        found.add("downsampling")
    if any(_is_norm(n, m) for n, m in modules if n):
        found.add("norm")
    if _has_mlp(model):
        found.add("mlp")
    unchecked = set()
    if example_input is None:
        unchecked.add("residual")
    else:
        try:
            if _has_residual(model, example_input):
                found.add("residual")
        except Exception:  # a model the probe cannot run: say nothing rather than guess
            unchecked.add("residual")
    return frozenset(found), frozenset(unchecked)


def infer_modality(model: nn.Module | None, example_input: Any = None) -> str | None:
    """``image`` or ``text`` when the model or its input says so plainly, else None.

    Token ids (an integer tensor of shape batch x length) or a model that starts from an
    ``nn.Embedding`` and has no 2-D convolution read as text; 4-D floating-point input or a
    model with 2-D convolutions and no embedding reads as image."""
    if isinstance(example_input, torch.Tensor):
        if not example_input.is_floating_point() and example_input.ndim == 2:
            return "text"
        if example_input.is_floating_point() and example_input.ndim == 4:
            return "image"
    if model is None:
        return None
    kinds = {type(m) for m in model.modules()}
    embedding = any(issubclass(k, nn.Embedding) for k in kinds)
    conv = any(issubclass(k, nn.Conv2d) for k in kinds)
    if embedding and not conv:
        return "text"
    if conv and not embedding:
        return "image"
    return None


# ------------------------------------------------------------------ the switches
def _compiled(model: nn.Module) -> bool:
    from hasten.methods.compile import is_compiled

    return is_compiled(model) or type(model).__name__ == "OptimizedModule"


def _channels_last(model: nn.Module) -> bool:
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    informative = [w for w in weights if w.shape[1] > 1 and w.shape[2] * w.shape[3] > 1]
    return bool(informative) and all(
        w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in informative
    )


def half_precision_share(census: Any) -> float:
    """Share of counted matmul/conv FLOPs that ran in bf16 or fp16 (0 without a census)."""
    if census is None:
        return 0.0
    total = half = 0.0
    for op in census.ops.values():
        if op.flops > 0:
            total += op.flops
            if op.dtype in HALF:
                half += op.flops
    return half / total if total else 0.0


def switches_in_use(model: nn.Module | None, census: Any = None) -> dict[str, str]:
    """The implementation switches this loop already uses, each with how it was seen."""
    out: dict[str, str] = {}
    share = half_precision_share(census)
    if share >= 0.5:
        out["precision"] = f"{share:.0%} of the step's matrix-product FLOPs already run in 16-bit"
    if model is not None:
        if _compiled(model):
            out["compile"] = "the model is already compiled"
        if _channels_last(model):
            out["channels_last"] = "the convolution weights are already channels-last"
    return out


def inspect_loop(
    model: nn.Module | None, *, example_input: Any = None, census: Any = None, modality: str | None = None
) -> LoopFacts:
    """Everything the recommendations need to know about this loop (``modality`` given wins)."""
    if model is None:
        return LoopFacts(modality=modality, in_use=switches_in_use(None, census))
    # a compiled model would compile again for the probe's forward: its residuals stay unchecked
    features, unchecked = model_features(model, None if _compiled(model) else example_input)
    return LoopFacts(
        modality=modality or infer_modality(model, example_input),
        features=features,
        unchecked=unchecked,
        in_use=switches_in_use(model, census),
    )


def why_not(card: Any, facts: LoopFacts) -> str | None:
    """Why the method on ``card`` should not be recommended for this loop, or None if it may."""
    if card.name in facts.in_use:
        return f"already on: {facts.in_use[card.name]}"
    applies = tuple(card.applies_to or ("any",))
    if facts.modality is not None and "any" not in applies and facts.modality not in applies:
        return f"for {' or '.join(applies)} models; this one is {facts.modality}"
    if facts.features is not None:
        missing = [n for n in getattr(card, "needs", ()) if n not in facts.features and n not in facts.unchecked]
        if missing:
            return f"the model has no {', '.join(FEATURE_WORDS.get(n, n) for n in missing)} for it to act on"
    return None


FEATURE_WORDS = {
    "conv2d": "2-D convolutions",
    "downsampling": "strided convolutions or max-pools",
    "norm": "LayerNorm, GroupNorm or RMSNorm layers",
    "mlp": "two-layer MLP blocks",
    "residual": "residual connections",
}
