"""FlashOptim's CPU update as one compiled C loop (``flash_step.c``), loaded through ctypes.

Why: on a CPU the eager update streams ~100 fp32 temporaries through memory, and Inductor's
C++ for the same graph still splits it into several passes (docs/flashoptim.md); torch's fused
AdamW reads each byte of state once. ``flash_step.c`` does the same for FlashOptim: each
quantization group of 32 values is loaded once, updated in registers, and stored once, across
threads with OpenMP. It needs no torch headers, so the system C compiler builds it in about a
second; the library is cached per source, compiler flags and CPU (``-march=native`` code must
not run on another CPU), under ``$HASTEN_CACHE`` or ``~/.cache/hasten/kernels``.

``available()`` says whether the kernel builds here; ``step(...)`` runs it on one flat tensor,
returning False (nothing done) when the tensor's layout is one it does not cover (fp16 or fp32
weights, fp32 states): the caller then runs the eager update.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

SOURCE = Path(__file__).with_name("flash_step.c")
FLAGS = (
    "-O3",
    "-march=native",
    "-fopenmp",
    "-ffp-contract=off",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-shared",
    "-fPIC",
)
RULES = {"sgd_rule": 0, "adam_rule": 1, "lion_rule": 2}
GRAD_DTYPES = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}


class _Hyper(ctypes.Structure):
    """Mirror of ``Hyper`` in flash_step.c."""

    _fields_ = [
        (name, ctypes.c_float)
        for name in (
            "lr",
            "weight_decay",
            "decay",
            "one_minus_beta1",
            "beta2",
            "one_minus_beta2",
            "eps",
            "step_size",
            "bias_root",
            "momentum",
            "one_minus_dampening",
        )
    ] + [(name, ctypes.c_int32) for name in ("decoupled", "nesterov", "first_step")]


def _cpu_fingerprint() -> str:
    """What ``-march=native`` depends on: the CPU model and its feature flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        keep = [line for line in lines if line.startswith(("model name", "flags"))][:2]
        return "\n".join(keep) or platform.processor()
    except OSError:
        return platform.processor() or platform.machine()


def _compiler() -> str | None:
    for name in (os.environ.get("CC", ""), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _cache_dir() -> Path:
    root = os.environ.get("HASTEN_CACHE")
    return Path(root) / "kernels" if root else Path.home() / ".cache" / "hasten" / "kernels"


@functools.lru_cache(maxsize=None)
def _library() -> tuple[ctypes.CDLL | None, str | None]:
    """(the loaded kernel, None) or (None, why it is not available). Built once per process."""
    compiler = _compiler()
    if compiler is None:
        return None, "no C compiler found (set CC, or install gcc)"
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join(FLAGS).encode() + compiler.encode() + _cpu_fingerprint().encode())
    target = _cache_dir() / f"flash_step-{key.hexdigest()[:16]}.so"
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # build beside the target, then rename: another process never loads a half-written file
            with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
                built = Path(scratch) / target.name
                subprocess.run(
                    [compiler, *FLAGS, str(SOURCE), "-o", str(built), "-lm"],
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
                os.replace(built, target)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            first = detail.decode(errors="replace").strip().splitlines()[:1]
            return None, f"{compiler} could not build {SOURCE.name}: {first[0] if first else exc}"
    try:
        library = ctypes.CDLL(str(target))
    except OSError as exc:
        return None, f"the built kernel does not load: {exc}"
    function = library.hasten_flash_step
    pointer = ctypes.c_void_p
    function.argtypes = [
        ctypes.c_int64,  # numel
        pointer,  # weights (bf16)
        pointer,  # correction or NULL
        ctypes.c_int,  # correction bytes
        pointer,  # grad
        ctypes.c_int,  # grad dtype
        pointer,  # codes1
        pointer,  # scales1
        pointer,  # codes2
        pointer,  # scales2
        ctypes.c_int,  # rule
        ctypes.POINTER(_Hyper),
        ctypes.c_int,  # threads
    ]
    function.restype = ctypes.c_int
    return library, None


def problem() -> str | None:
    """Why the CPU kernel cannot run here (None: it can). Builds it on first call."""
    return _library()[1]


def available() -> bool:
    return problem() is None


def _hyper(rule: str, hyper: Mapping[str, Any]) -> _Hyper:
    """The eager rule's scalars, as the eager rule computes them in Python before torch casts to fp32."""
    lr, wd = float(hyper["lr"]), float(hyper["weight_decay"])
    values = _Hyper(lr=lr, weight_decay=wd, decay=1.0 - lr * wd, decoupled=int(bool(hyper.get("decoupled", True))))
    if rule in ("adam_rule", "lion_rule"):
        values.one_minus_beta1 = 1.0 - hyper["beta1"]
        values.beta2 = hyper["beta2"]
        values.one_minus_beta2 = 1.0 - hyper["beta2"]
    if rule == "adam_rule":
        values.eps, values.step_size, values.bias_root = hyper["eps"], hyper["step_size"], hyper["bias_root"]
    if rule == "sgd_rule":
        values.momentum = hyper["momentum"]
        values.one_minus_dampening = 1.0 - hyper["dampening"]
        values.nesterov, values.first_step = int(hyper["nesterov"]), int(hyper["first_step"])
    return values


def _pointer(tensor: torch.Tensor | None) -> int | None:
    return tensor.data_ptr() if tensor is not None else None


def step(
    rule: Callable[..., None],
    kinds: Mapping[str, str],
    weights: torch.Tensor,
    correction: torch.Tensor | None,
    grad: torch.Tensor,
    states: Mapping[str, Any],
    hyper: Mapping[str, Any],
) -> bool:
    """``fused.step_tensor``'s update in one pass; False (nothing changed) if this layout is not covered."""
    name = getattr(rule, "__name__", "")
    if name not in RULES or weights.device.type != "cpu" or weights.dtype != torch.bfloat16:
        return False
    if grad.dtype not in GRAD_DTYPES or not (weights.is_contiguous() and grad.is_contiguous()):
        return False
    if correction is not None and (correction.dtype not in (torch.int8, torch.int16) or not correction.is_contiguous()):
        return False
    stored = list(states.values())
    if any(not isinstance(s, tuple) for s in stored) or len(stored) > 2:
        return False  # fp32 states (quantize=False): the reference mode stays eager
    signed = [states[k] for k, kind in kinds.items() if kind == "signed"]
    unsigned = [states[k] for k, kind in kinds.items() if kind == "unsigned"]
    if len(signed) > 1 or len(unsigned) > 1 or (unsigned and not signed):
        return False
    library, _ = _library()
    if library is None:
        return False
    codes1, scales1 = signed[0] if signed else (None, None)
    codes2, scales2 = unsigned[0] if unsigned else (None, None)
    library.hasten_flash_step(
        weights.numel(),
        weights.data_ptr(),
        _pointer(correction),
        correction.element_size() if correction is not None else 0,
        grad.data_ptr(),
        GRAD_DTYPES[grad.dtype],
        _pointer(codes1),
        _pointer(scales1),
        _pointer(codes2),
        _pointer(scales2),
        RULES[name],
        ctypes.byref(_hyper(name, hyper)),
        torch.get_num_threads(),
    )
    return True
