"""Muon: momentum whose update is orthogonalized by a Newton-Schulz iteration, for weight matrices.

For a hidden layer's weight W (2-D, or a conv kernel reshaped to out x in*kh*kw), Muon keeps a
momentum buffer B and steps along NS(B) ~ U V^T, the orthogonal factor of B = U S V^T: every
singular direction moves by about the same amount, so rare directions are not drowned out by
dominant ones. Embeddings, the output head, biases and norm gains are not hidden-layer matrices;
they are updated by AdamW or SGD in the same optimizer (``kind`` per group), so one state dict and
one learning-rate schedule cover the whole model.

After Jordan et al. (2024), "Muon: An optimizer for hidden layers in neural networks" (blog and
KellerJordan/Muon). ``torch.optim.Muon`` implements the 2-D-only core; this one adds conv kernels,
an fp32 iteration on CPU, and the auxiliary AdamW/SGD groups. Its 2-D update matches torch's.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, Callable, Iterable, cast

import torch
from torch import nn

from hasten.errors import ConfigError

__all__ = [
    "NS_COEFFICIENTS",
    "Muon",
    "build_muon",
    "fast_ns_dtype",
    "input_layer",
    "newton_schulz",
    "orthogonalize",
    "orthogonalize_all",
    "output_head",
    "split_params",
]

#: Quintic coefficients chosen for a steep slope at zero (Jordan et al. 2024).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
KINDS = ("muon", "adamw", "sgd")


def newton_schulz(
    matrix: torch.Tensor, steps: int = 5, dtype: torch.dtype = torch.bfloat16, eps: float = 1e-7
) -> torch.Tensor:
    """Approximate the orthogonal factor U V^T of ``matrix`` (2-D, or a stack ``(..., rows, cols)``
    orthogonalized matrix by matrix) with ``steps`` quintic iterations.

    The iteration acts on each singular value s of ``matrix / ||matrix||_F`` as the scalar map
    x -> a x + b x^3 + c x^5, repeated. It is tuned for speed, not convergence: after 5 steps every
    normalized singular value >= 2e-3 lands in about [0.68, 1.21] (not exactly 1). A stack runs as
    batched matrix products: one launch per product for all the matrices, not one per matrix.
    """
    if matrix.ndim < 2:
        raise ValueError(f"newton_schulz takes a matrix or a stack of matrices, got shape {tuple(matrix.shape)}")
    a, b, c = NS_COEFFICIENTS
    x = matrix.to(dtype)
    transposed = x.shape[-2] > x.shape[-1]
    if transposed:  # iterate on the smaller Gram matrix
        x = x.mT
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.mT if transposed else x


@functools.lru_cache(maxsize=None)
def fast_ns_dtype(device: torch.device) -> torch.dtype:
    """bf16 where a bf16 matrix product is measured faster than fp32 on ``device``, else fp32.

    GPUs and CPUs with bf16 matrix units (AMX, AVX512-BF16) run bf16 products faster; other CPUs
    emulate them, 10-50x slower. Measured once per device and process (best of interleaved
    repeats of a 256 x 256 product, the size of a small hidden layer), so the choice follows the
    hardware, not a guess from its name.
    """
    size, repeats = 256, 5
    timings: dict[torch.dtype, float] = {torch.float32: math.inf, torch.bfloat16: math.inf}
    try:
        operands = {dtype: torch.randn(size, size, device=device).to(dtype) for dtype in timings}
        for _ in range(repeats):
            for dtype, x in operands.items():
                _synchronize(device)
                started = time.perf_counter()
                x @ x
                _synchronize(device)
                timings[dtype] = min(timings[dtype], time.perf_counter() - started)
    except RuntimeError:  # no bf16 matmul on this device at all
        return torch.float32
    return torch.bfloat16 if timings[torch.bfloat16] < timings[torch.float32] else torch.float32


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def orthogonalize(update: torch.Tensor, steps: int = 5, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``newton_schulz`` for any weight of 2+ dims (conv kernels as out x rest), in the update's
    shape and dtype. ``dtype=None``: bf16 where it is measured faster (``fast_ns_dtype``), else fp32."""
    if dtype is None:
        dtype = fast_ns_dtype(update.device)
    flat = update.reshape(update.shape[0], -1)
    return newton_schulz(flat, steps, dtype).to(update.dtype).view_as(update)


def orthogonalize_all(
    updates: list[torch.Tensor], steps: int = 5, dtype: torch.dtype | None = None
) -> list[torch.Tensor]:
    """``orthogonalize`` of each update, same-shape matrices stacked into one batched iteration."""
    by_shape: dict[tuple[int, int, torch.dtype, torch.device], list[int]] = {}
    for index, update in enumerate(updates):
        rows = update.shape[0]
        by_shape.setdefault((rows, update.numel() // max(rows, 1), update.dtype, update.device), []).append(index)
    out: list[torch.Tensor] = [updates[0]] * len(updates)
    for (rows, cols, _, device), indices in by_shape.items():
        stack = torch.stack([updates[i].reshape(rows, cols) for i in indices])
        result = newton_schulz(stack, steps, dtype or fast_ns_dtype(device))
        for slot, index in enumerate(indices):
            out[index] = result[slot].to(updates[index].dtype).view_as(updates[index])
    return out


def output_head(model: nn.Module) -> nn.Module | None:
    """The output layer, taken to be the last ``nn.Linear`` registered (nanoGPT's ``lm_head``,
    a ResNet's ``fc``). Models whose head is something else can say so with ``exclude``."""
    head = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            head = module
    return head


_LAYERS = (nn.Embedding, nn.Linear, nn.modules.conv._ConvNd)


def input_layer(model: nn.Module) -> nn.Module | None:
    """The layer that reads the model's input: the first embedding, linear or conv layer registered
    (a CNN's RGB stem, an MLP's first linear, a language model's token embedding). Muon's authors
    train it with AdamW, not Muon: its fan-in is tiny (3 x k x k for an image stem) and its input is
    data, not a hidden representation."""
    for module in model.modules():
        if isinstance(module, _LAYERS) and any(True for _ in module.parameters(recurse=False)):
            return module
    return None


Exclude = Callable[[str, nn.Module, nn.Parameter], bool]


def split_params(model: nn.Module, exclude: Exclude | None = None) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(hidden-layer matrices for Muon, everything else), trainable parameters only, each once.

    A matrix is a parameter with 2+ dims that does not belong to an ``nn.Embedding``, the input
    layer (``input_layer``) or the output head, and that ``exclude(qualified_name, module, param)``
    does not claim. Tied weights
    go where they are first met (an embedding tied to the head stays with the embedding).
    """
    head, first = output_head(model), input_layer(model)
    matrices: list[nn.Parameter] = []
    others: list[nn.Parameter] = []
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen or not param.requires_grad:
                continue
            seen.add(id(param))
            qualified = f"{module_name}.{name}" if module_name else name
            is_matrix = (
                param.ndim >= 2
                and not isinstance(module, nn.Embedding)
                and module is not head
                and module is not first
                and not (exclude is not None and exclude(qualified, module, param))
            )
            (matrices if is_matrix else others).append(param)
    return matrices, others


def _grads(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """The gradients of ``params``; step() passes only parameters that have one."""
    return [cast(torch.Tensor, p.grad) for p in params]


class Muon(torch.optim.Optimizer):
    """Muon for groups of ``kind="muon"`` (the default), AdamW or SGD for ``kind="adamw"|"sgd"``.

    Muon group: ``lr``, ``momentum``, ``nesterov``, ``ns_steps``, ``weight_decay`` (decoupled).
    Per step: B <- momentum B + (1 - momentum) g;  u = lerp(g, B, momentum) if nesterov else B;
    W <- W (1 - lr wd) - lr sqrt(max(1, rows/cols)) NS(u).
    AdamW groups follow ``torch.optim.AdamW``; SGD groups follow ``torch.optim.SGD``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        weight_decay: float = 0.0,
        ns_dtype: torch.dtype | None = None,
    ) -> None:
        if lr < 0 or not 0 <= momentum < 1 or weight_decay < 0 or ns_steps < 1:
            raise ValueError("Muon needs lr >= 0, 0 <= momentum < 1, weight_decay >= 0 and ns_steps >= 1")
        self.ns_dtype = ns_dtype
        self._kind_defaults: dict[str, dict[str, Any]] = {
            "muon": dict(lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps, weight_decay=weight_decay),
            "adamw": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
            "sgd": dict(lr=0.01, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0),
        }
        super().__init__(params, {})

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        kind = param_group.setdefault("kind", "muon")
        if kind not in KINDS:
            raise ValueError(f"unknown group kind {kind!r}; use one of {', '.join(KINDS)}")
        for key, value in self._kind_defaults[kind].items():
            param_group.setdefault(key, value)
        params = param_group["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        flat = [p for p in params if p.ndim < 2] if kind == "muon" else []
        if flat:
            raise ValueError(
                f"Muon groups take weights with 2+ dims; got shape {tuple(flat[0].shape)} "
                "(put biases, norms, embeddings and the head in a kind='adamw' or 'sgd' group; see split_params)"
            )
        param_group["params"] = params
        super().add_param_group(param_group)

    @torch.no_grad()
    # torch's stub overloads step() on the closure's type; this returns the closure's loss the same way
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                {"muon": self._muon, "adamw": self._adamw, "sgd": self._sgd}[group["kind"]](params, group)
        return loss

    def _muon(self, params: list[torch.Tensor], group: dict) -> None:
        """One step for a Muon group: momentum for all at once, Newton-Schulz batched by shape."""
        momentum = group["momentum"]
        grads = _grads(params)
        buffers = []
        for param, grad in zip(params, grads):
            state = self.state[param]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(grad)
            buffers.append(state["momentum_buffer"])
        torch._foreach_lerp_(buffers, grads, 1 - momentum)
        directions = torch._foreach_lerp(grads, buffers, momentum) if group["nesterov"] else buffers
        orthos = orthogonalize_all(list(directions), group["ns_steps"], self.ns_dtype)
        torch._foreach_mul_(params, 1 - group["lr"] * group["weight_decay"])
        for param, ortho in zip(params, orthos):
            rows, cols = param.shape[0], param[0].numel()
            param.add_(ortho, alpha=-group["lr"] * math.sqrt(max(1.0, rows / cols)))

    def _adamw(self, params: list[torch.Tensor], group: dict) -> None:
        """``torch.optim.AdamW``'s rule, the same ops in the same order, over the group at once."""
        beta1, beta2 = group["betas"]
        by_step: dict[int, list[torch.Tensor]] = {}
        for param in params:
            state = self.state[param]
            if "step" not in state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(param)
                state["exp_avg_sq"] = torch.zeros_like(param)
            state["step"] += 1
            by_step.setdefault(state["step"], []).append(param)
        for step, same in by_step.items():
            grads = _grads(same)
            exp_avgs = [self.state[p]["exp_avg"] for p in same]
            exp_avg_sqs = [self.state[p]["exp_avg_sq"] for p in same]
            torch._foreach_mul_(same, 1 - group["lr"] * group["weight_decay"])
            torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
            denoms = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_div_(denoms, math.sqrt(1 - beta2**step))
            torch._foreach_add_(denoms, group["eps"])
            torch._foreach_addcdiv_(same, exp_avgs, denoms, value=-group["lr"] / (1 - beta1**step))

    def _sgd(self, params: list[torch.Tensor], group: dict) -> None:
        for param, grad in zip(params, _grads(params)):
            self._sgd_one(param, grad, group, self.state[param])

    @staticmethod
    def _sgd_one(param: torch.Tensor, grad: torch.Tensor, group: dict, state: dict) -> None:
        if group["weight_decay"]:
            grad = grad.add(param, alpha=group["weight_decay"])
        momentum = group["momentum"]
        if momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.detach().clone()
            else:
                state["momentum_buffer"].mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            buffer = state["momentum_buffer"]
            grad = grad.add(buffer, alpha=momentum) if group["nesterov"] else buffer
        param.add_(grad, alpha=-group["lr"])


def _kind_of(optimizer: torch.optim.Optimizer) -> str | None:
    if isinstance(optimizer, torch.optim.SGD):
        return "sgd"
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        return "adamw"
    return None


_INHERITED = {
    "adamw": ("lr", "betas", "eps", "weight_decay"),
    "sgd": ("lr", "momentum", "dampening", "nesterov", "weight_decay"),
}


def _aux_groups(
    others: list[nn.Parameter], baseline: torch.optim.Optimizer | None, aux: str, aux_lr: float | None
) -> list[dict[str, Any]]:
    """Groups for the non-matrix parameters. With ``aux="auto"`` and an SGD or Adam(W)
    baseline, each keeps the baseline group's kind and settings; otherwise one group."""
    if not others:
        return []
    base_kind = _kind_of(baseline) if baseline is not None else None
    kind = (base_kind or "adamw") if aux == "auto" else aux
    if kind not in ("adamw", "sgd"):
        raise ValueError(f"aux must be 'auto', 'adamw' or 'sgd', got {aux!r}")
    groups: list[dict[str, Any]] = []
    if baseline is not None and base_kind == kind:
        remaining = {id(p): p for p in others}
        for group in baseline.param_groups:
            params = [remaining.pop(id(p)) for p in group["params"] if id(p) in remaining]
            if params:
                groups.append({"params": params, "kind": kind, **{k: group[k] for k in _INHERITED[kind] if k in group}})
        if remaining:
            groups.append({"params": list(remaining.values()), "kind": kind})
    else:
        groups.append({"params": others, "kind": kind})
    if aux_lr is not None:
        for group in groups:
            group["lr"] = aux_lr
    return groups


def build_muon(
    model: nn.Module,
    lr: float = 0.02,
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_steps: int = 5,
    weight_decay: float = 0.0,
    aux: str = "auto",
    aux_lr: float | None = None,
    baseline: torch.optim.Optimizer | None = None,
    exclude: Exclude | None = None,
    ns_dtype: torch.dtype | None = None,
) -> Muon:
    """A Muon optimizer for ``model``: hidden matrices in one Muon group, the rest in AdamW or SGD.

    ``aux="auto"`` keeps the ``baseline`` optimizer's kind and per-group settings for the rest
    (SGD stays SGD, Adam/AdamW becomes AdamW), AdamW otherwise; ``aux_lr`` overrides their lr.
    """
    matrices, others = split_params(model, exclude)
    if not matrices:
        raise ConfigError(
            "muon: the model has no hidden-layer matrices to orthogonalize (only embeddings, the head and vectors)",
            "use another optimizer, or pass exclude= to split it differently",
        )
    groups = [{"params": matrices, "kind": "muon"}, *_aux_groups(others, baseline, aux, aux_lr)]
    return Muon(
        groups,
        lr=lr,
        momentum=momentum,
        nesterov=nesterov,
        ns_steps=ns_steps,
        weight_decay=weight_decay,
        ns_dtype=ns_dtype,
    )
