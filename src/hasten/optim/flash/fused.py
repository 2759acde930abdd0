"""One fused update per tensor: dequantize -> rule -> requantize -> master-weight split.

``step_tensor`` is the whole FlashOptim update of one flat tensor (a parameter's chunk, or
small tensors packed together), written once in plain PyTorch. Eager, it is ~100 small
elementwise ops, each reading and writing fp32 temporaries: on a GPU that made FlashAdamW's
step 9x slower than ``torch.optim.AdamW(fused=True)``. ``torch.compile`` of the same function
lets Inductor fuse it into a few kernels (Triton on CUDA, C++/OpenMP on CPU) that read each
byte of state once and write it once, as FlashOptim's own fused kernel does. One source for
both paths: the eager call is the reference the compiled one is tested against.

On CPU the default is neither: ``native.py`` runs the same update as one C loop (built with
the system compiler, about a second, once per machine), which reads and writes each byte once;
layouts it does not cover (fp16 or fp32 weights, fp32 states) fall back to this function.

Compilation happens on the first step (and, for SGD with momentum, the second, whose update
differs): ``flash_*`` methods charge those steps to the Trainer's ``warmup`` bucket. Shapes
are dynamic, so chunks and packed buffers of any length share one compiled graph per rule,
dtype and storage layout. Hyperparameters enter as Python floats, which Dynamo treats as
graph inputs (``specialize_float=False``): a learning-rate schedule does not recompile.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Any, Callable, Mapping, Union

import torch

from hasten.errors import ConfigError
from hasten.optim.flash import quantize as q
from hasten.optim.flash.weight_split import reconstruct, split_into

SIGNED, UNSIGNED = "signed", "unsigned"
DEQUANTIZE = {SIGNED: q.dequantize_signed, UNSIGNED: q.dequantize_unsigned}
QUANTIZE = {SIGNED: q.quantize_signed, UNSIGNED: q.quantize_unsigned}

#: a state as stored: (codes, scales) when quantized, a flat fp32 tensor otherwise
StoredState = Union[tuple[torch.Tensor, torch.Tensor], torch.Tensor]
Rule = Callable[[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], Mapping[str, Any]], None]

#: Dynamo's cache holds at most this many graphs per code object; every rule, dtype and layout
#: of every FlashOptimizer shares ``step_tensor``'s, so the default (8) is too small.
RECOMPILE_LIMIT = 64


def step_tensor(
    rule: Rule,
    kinds: Mapping[str, str],
    weights: torch.Tensor,
    correction: torch.Tensor | None,
    grad: torch.Tensor,
    states: Mapping[str, StoredState],
    hyper: Mapping[str, Any],
) -> None:
    """Update flat ``weights`` (16-bit with an integer ``correction``, or fp32) in place.

    ``states`` maps each state name of ``kinds`` to its storage, updated in place too. ``rule``
    is the fp32 update (``theta``, ``grad``, ``values``, ``hyper``); it must not write ``grad``.
    """
    if correction is not None:
        theta = reconstruct(weights, correction)
    elif weights.dtype == torch.float32:
        theta = weights
    else:
        theta = weights.float()
    numel = weights.numel()
    values = {}
    for name, kind in kinds.items():
        stored = states[name]
        values[name] = DEQUANTIZE[kind](stored[0], stored[1], numel) if isinstance(stored, tuple) else stored
    rule(theta, grad.float(), values, hyper)
    if correction is not None:
        split_into(theta, weights, correction)
    elif theta is not weights:
        weights.copy_(theta)
    for name, kind in kinds.items():
        stored = states[name]
        if isinstance(stored, tuple):
            codes, scales = QUANTIZE[kind](values[name])
            stored[0].copy_(codes)
            stored[1].copy_(scales)


@functools.lru_cache(maxsize=None)
def compile_problem(device_type: str) -> str | None:
    """Why ``torch.compile`` cannot fuse on ``device_type`` (None: it can). Probed once per process."""
    try:
        import torch._dynamo
    except ImportError as exc:  # pragma: no cover - torch builds without dynamo
        return f"torch._dynamo is missing ({exc})"
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile is not supported on this Python/platform"
    probe = torch.compile(lambda x: (x * 2.0).add_(1.0), dynamic=False)
    try:
        probe(torch.ones(4, device=device_type))
    except Exception as exc:  # a missing compiler, a broken toolchain: any failure means no fusion
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ''}"
    return None


@functools.lru_cache(maxsize=None)
def _compiled(device_type: str) -> Callable[..., None]:
    import torch._dynamo.config as dynamo_config

    for name in ("recompile_limit", "cache_size_limit"):  # the name changed across torch versions
        if hasattr(dynamo_config, name):
            setattr(dynamo_config, name, max(getattr(dynamo_config, name), RECOMPILE_LIMIT))
    # emulate_precision_casts: Inductor otherwise drops a round trip fp32 -> bf16 -> fp32 inside a
    # fused kernel as a no-op, and the master-weight split (theta - bf16(theta)) would read zero.
    # Shapes are dynamic: one graph per rule, dtype and layout serves every chunk and packed buffer.
    # (dynamic=False would also specialize the float hyperparameters: a recompile every step. On CPU
    # the dynamic-shape C++ is slow, see docs/flashoptim.md; static shapes with unspecialized floats
    # are the next thing to try.)
    return torch.compile(step_tensor, dynamic=True, options={"emulate_precision_casts": True})


#: overrides ``fused=None`` for the whole process: "0" eager, "1" compiled (e.g. a test suite that
#: must not spend minutes compiling, or a benchmark pinning one path)
FUSED_ENV = "HASTEN_FLASH_FUSED"


#: device types where ``fused=None`` compiles. Not CPU: there the compiled update measured slower
#: than the eager one (benchmarks/optimizer_step.py, docs/flashoptim.md), so auto keeps eager.
AUTO_FUSED_DEVICES = ("cuda",)


def resolve_fused(fused: bool | None, device_type: str) -> bool:
    """``fused=None``: compile on CUDA where possible, else eager (one warning if CUDA cannot
    compile). True: compile or refuse. False: eager."""
    if fused is None and os.environ.get(FUSED_ENV, "").strip() in ("0", "1"):
        fused = os.environ[FUSED_ENV].strip() == "1"
    if fused is None and device_type not in AUTO_FUSED_DEVICES:
        return False
    if fused is False:
        return False
    problem = compile_problem(device_type)
    if problem is None:
        return True
    if fused:
        raise ConfigError(
            f"fused FlashOptim needs torch.compile on {device_type}, which fails here: {problem}",
            "install a C++ compiler (CPU) or Triton (CUDA), or pass fused=False",
        )
    warnings.warn(
        f"FlashOptim runs its eager update on {device_type} (torch.compile unavailable: {problem})",
        RuntimeWarning,
        stacklevel=3,
    )
    return False


def resolve_native(fused: bool | None, device_type: str) -> bool:
    """``fused=None`` on CPU: the one-pass C kernel (``native.py``) where it builds, else eager
    with one warning. ``fused=True`` keeps meaning torch.compile, ``False`` eager, and the
    environment override (``HASTEN_FLASH_FUSED=0``/``1``) wins over both."""
    if device_type != "cpu" or fused is not None or os.environ.get(FUSED_ENV, "").strip() in ("0", "1"):
        return False
    from hasten.optim.flash import native

    problem = native.problem()
    if problem is not None:
        warnings.warn(f"FlashOptim runs its eager (slow) update on cpu: {problem}", RuntimeWarning, stacklevel=3)
    return problem is None


def run_step(fused: bool, *args: Any) -> None:
    """``step_tensor(*args)``, compiled when ``fused``."""
    (_compiled(args[2].device.type) if fused else step_tensor)(*args)
