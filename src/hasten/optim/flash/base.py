"""``FlashOptimizer``: storage, step loop and checkpoints shared by every FlashOptim rule.

Per parameter the optimizer keeps (FlashOptim, Gonzalez Ortiz et al. 2026):

- ``weight_correction``: int8 (24-bit master weights) or int16 (32-bit) correction of a
  16-bit parameter; absent for fp32 parameters (layers ``cast_model`` kept in fp32);
- each state tensor (``exp_avg``, ``exp_avg_sq``, ``momentum_buffer``) as 8-bit codes plus
  ``<name>_scales``, one bf16 scale per 32 values (``quantize=True``), or as fp32
  (``quantize=False``, the reference mode the tests compare against);
- ``step``, a plain int.

A step reconstructs the fp32 weight and states, applies the ordinary fp32 update, and
splits and quantizes again (``fused.step_tensor``). Plain PyTorch: it runs on CPU and GPU
alike, compiled into a few fused kernels where ``torch.compile`` works (``fused``). Large
tensors are processed in chunks of ``CHUNK`` values so the fp32 temporaries stay small.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, cast

import torch
from torch import nn

from hasten.errors import CheckpointError, ConfigError
from hasten.optim.flash import native
from hasten.optim.flash import quantize as q
from hasten.optim.flash.fused import DEQUANTIZE as _DEQUANTIZE
from hasten.optim.flash.fused import QUANTIZE as _QUANTIZE
from hasten.optim.flash.fused import SIGNED, StoredState, resolve_fused, resolve_native, run_step
from hasten.optim.flash.packing import Packing
from hasten.optim.flash.weight_split import NARROW_FORMATS, correction_dtype, reconstruct, split_into

CHUNK = 1 << 20  # values per chunk of work; a multiple of the quantization group size
CORRECTION = "weight_correction"
SCALES = "_scales"


class FlashOptimizer(torch.optim.Optimizer):
    """Base class. Subclasses set ``state_kinds(group)``, ``rule`` (the fp32 update, a plain
    function) and ``hyperparameters(group, step)`` (the floats ``rule`` reads).

    - ``quantize``: keep states as companded 8-bit codes (True) or fp32 (False).
    - ``master_weight_bits``: 24 (int8 correction), 32 (int16) or None (no correction:
      16-bit parameters are updated in 16 bits, and small updates are lost).
    - ``compress_state_dict``: ``state_dict()`` holds the compact storage as is (8-bit codes
      and scales; exact resume, ~5 B/param checkpoints for AdamW) or, when False, each state
      as a bf16 tensor shaped like its parameter (readable by other tools, not bit-exact).
    - ``fused``: run each update compiled by ``torch.compile`` into a few fused kernels (True),
      eagerly (False), or the fastest here (None): the one-pass C kernel on CPU (``native.py``),
      compiled on CUDA, eager where neither works.
    """

    rule: staticmethod

    def __init__(
        self,
        params: Iterable,
        defaults: dict[str, Any],
        *,
        quantize: bool = True,
        master_weight_bits: int | None = 24,
        compress_state_dict: bool = True,
        fused: bool | None = None,
    ) -> None:
        if defaults.get("lr", 0.0) < 0.0:
            raise ConfigError(f"learning rate must be >= 0, got {defaults['lr']}")
        if defaults.get("weight_decay", 0.0) < 0.0:
            raise ConfigError(f"weight_decay must be >= 0, got {defaults['weight_decay']}")
        try:
            self.correction_dtype = correction_dtype(master_weight_bits)
        except ValueError as exc:
            raise ConfigError(str(exc), "use 24 (bf16 + int8), 32 (bf16 + int16) or None") from None
        self.quantize = quantize
        self.master_weight_bits = master_weight_bits
        self.compress_state_dict = compress_state_dict
        self.gradient_release_active = False
        self.fused = fused
        self._fused_on: dict[str, bool] = {}  # device type -> whether steps there run compiled
        self._native_on: dict[str, bool] = {}  # device type -> whether steps there run the C kernel
        super().__init__(params, defaults)
        for group in self.param_groups:  # eager: memory reports see the real footprint up front
            for param in group["params"]:
                self._state_for(param, group)

    # -------------------------------------------------------------- subclass API
    def state_kinds(self, group: dict[str, Any]) -> dict[str, str]:
        """State names this rule keeps for ``group`` -> ``"signed"`` or ``"unsigned"``."""
        raise NotImplementedError

    def hyperparameters(self, group: dict[str, Any], step: int) -> dict[str, Any]:
        """The Python scalars ``rule`` reads at ``step`` (bias corrections computed here, once)."""
        raise NotImplementedError

    def is_fused(self, device: torch.device) -> bool:
        """Whether steps on ``device`` run the compiled update (decided once per device type)."""
        if device.type not in self._fused_on:
            self._fused_on[device.type] = resolve_fused(self.fused, device.type)
        return self._fused_on[device.type]

    def is_native(self, device: torch.device) -> bool:
        """Whether steps on ``device`` run the one-pass C kernel (``native.py``) where it covers the layout."""
        if device.type not in self._native_on:
            self._native_on[device.type] = resolve_native(self.fused, device.type)
        return self._native_on[device.type]

    def _run(
        self,
        kinds: dict[str, str],
        weights: torch.Tensor,
        correction: torch.Tensor | None,
        grad: torch.Tensor,
        states: dict[str, StoredState],
        group: dict[str, Any],
        step: int,
    ) -> None:
        hyper = self.hyperparameters(group, step)
        if self.is_native(weights.device) and native.step(
            type(self).rule, kinds, weights, correction, grad, states, hyper
        ):
            return
        run_step(
            self.is_fused(weights.device),
            type(self).rule,
            kinds,
            weights,
            correction,
            grad,
            states,
            hyper,
        )

    # ------------------------------------------------------------------ storage
    def _state_for(self, param: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[param]
        if state:
            return state
        state["step"] = 0
        if param.dtype in NARROW_FORMATS and self.correction_dtype is not None:
            state[CORRECTION] = torch.zeros_like(
                param, dtype=self.correction_dtype, memory_format=torch.contiguous_format
            )
        numel = param.numel()
        for name, kind in self.state_kinds(group).items():
            if self.quantize:
                dtype = torch.int8 if kind == SIGNED else torch.uint8
                state[name] = torch.zeros(q.padded_length(numel), dtype=dtype, device=param.device)
                state[name + SCALES] = torch.zeros(q.num_groups(numel), dtype=q.SCALE_DTYPE, device=param.device)
            else:
                state[name] = torch.zeros(numel, dtype=torch.float32, device=param.device)
        return state

    def _stored_slices(self, state: dict, kinds: dict[str, str], start: int, end: int) -> dict[str, StoredState]:
        """Each state's storage covering values ``[start, end)`` (views: updated in place)."""
        if not self.quantize:
            return {name: state[name][start:end] for name in kinds}
        return {name: _code_slices(state, name, start, end) for name in kinds}

    def _store_states(
        self, state: dict, kinds: dict[str, str], values: dict[str, torch.Tensor], start: int, end: int
    ) -> None:
        if not self.quantize:
            return
        for name, kind in kinds.items():
            codes, scales = _code_slices(state, name, start, end)
            new_codes, new_scales = _QUANTIZE[kind](values[name])
            codes.copy_(new_codes)
            scales.copy_(new_scales)

    # --------------------------------------------------------------------- step
    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> Any:  # type: ignore[override]
        """Update every parameter that has a gradient (a no-op under gradient release).

        Small tensors that share dtype and step count are packed and stepped together.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.gradient_release_active:
            return loss
        for group in self.param_groups:
            buckets: dict[tuple, list[torch.Tensor]] = {}
            for param in group["params"]:
                if param.grad is None:
                    continue
                _check_grad(self, param)
                if not _packable(param):
                    self._step_large(param, group)
                    continue
                state = self._state_for(param, group)
                key = (param.dtype, param.device, CORRECTION in state, state["step"])
                buckets.setdefault(key, []).append(param)
            for params in buckets.values():
                for bucket in _limit(params, CHUNK):
                    self._step_packed(bucket, group)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        if not self.gradient_release_active:  # under release the gradients are already gone
            super().zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step_param(self, param: torch.Tensor, group: dict[str, Any]) -> None:
        """Update one parameter from its gradient (what gradient release calls per tensor).

        Takes the same code path, on the same layout, as ``step()`` does for this tensor,
        so stepping tensor by tensor gives bit-identical results.
        """
        if param.grad is None:
            return
        _check_grad(self, param)
        if _packable(param):
            self._step_packed([param], group)
        else:
            self._step_large(param, group)

    def _step_packed(self, params: list[torch.Tensor], group: dict[str, Any]) -> None:
        """Step small contiguous tensors of one dtype and step count as one flat buffer."""
        kinds = self.state_kinds(group)
        states = [self._state_for(p, group) for p in params]
        for state in states:
            state["step"] += 1
        pack = Packing([p.numel() for p in params])
        weights = pack.gather([p.data for p in params], params[0].dtype)
        grad = pack.gather([_grad(p) for p in params], torch.float32)
        corrections = [s[CORRECTION] for s in states] if CORRECTION in states[0] else None
        rho = pack.gather(corrections, corrections[0].dtype) if corrections is not None else None
        stored: dict[str, StoredState] = {}
        for name in kinds:
            if self.quantize:
                stored[name] = (torch.cat([s[name] for s in states]), torch.cat([s[name + SCALES] for s in states]))
            else:
                stored[name] = pack.gather([s[name] for s in states], torch.float32)
        self._run(kinds, weights, rho, grad, stored, group, states[0]["step"])
        pack.scatter(weights, [p.data for p in params])
        if corrections is not None and rho is not None:
            pack.scatter(rho, corrections)
        for name in kinds:
            if self.quantize:
                codes, scales = stored[name]
                torch._foreach_copy_([s[name] for s in states], pack.padded_views(codes))
                torch._foreach_copy_([s[name + SCALES] for s in states], pack.padded_views(scales, q.GROUP_SIZE))
            else:
                pack.scatter(cast(torch.Tensor, stored[name]), [s[name] for s in states])

    def _step_large(self, param: torch.Tensor, group: dict[str, Any]) -> None:
        """Step one large tensor in chunks of ``CHUNK`` values, so fp32 temporaries stay small."""
        state = self._state_for(param, group)
        state["step"] += 1
        kinds = self.state_kinds(group)
        data = param.data if param.data.is_contiguous() else param.data.contiguous()
        flat, grad_flat = data.view(-1), _grad(param).reshape(-1)
        correction = state.get(CORRECTION)
        for start in range(0, flat.numel(), CHUNK):
            end = min(start + CHUNK, flat.numel())
            rho = correction.view(-1)[start:end] if correction is not None else None
            self._run(
                kinds,
                flat[start:end],
                rho,
                grad_flat[start:end],
                self._stored_slices(state, kinds, start, end),
                group,
                state["step"],
            )
        if data is not param.data:
            param.data.copy_(data)

    # -------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only (loads with ``torch.load(weights_only=True)``)."""
        packed = super().state_dict()
        params = [p for group in self.param_groups for p in group["params"]]
        groups = {id(p): group for group in self.param_groups for p in group["params"]}
        converted = {}
        for index, state in packed["state"].items():
            param = params[index]
            converted[index] = (
                dict(state)
                if self.compress_state_dict
                else self._expanded(param, state, self.state_kinds(groups[id(param)]))
            )
        return {
            "state": converted,
            "param_groups": packed["param_groups"],
            "format": "compressed" if self.compress_state_dict else "bf16",
        }

    def _expanded(self, param: torch.Tensor, state: dict, kinds: dict[str, str]) -> dict[str, Any]:
        out = {k: v for k, v in state.items() if k not in kinds and not k.endswith(SCALES)}
        numel = param.numel()
        for name in kinds:
            out[name] = self._read_state(state, name, kinds[name], numel).view(param.shape).to(torch.bfloat16)
        return out

    def _read_state(self, state: dict, name: str, kind: str, numel: int) -> torch.Tensor:
        """One whole state as flat fp32, whatever its storage."""
        if name + SCALES in state:
            return _DEQUANTIZE[kind](state[name], state[name + SCALES], numel)
        return state[name].reshape(-1).float()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict in either format (or a torch optimizer's, for matching names)."""
        saved_groups = state_dict["param_groups"]
        super().load_state_dict({"state": {}, "param_groups": saved_groups})
        saved = state_dict["state"]
        for saved_group, group in zip(saved_groups, self.param_groups):
            kinds = self.state_kinds(group)
            for index, param in zip(saved_group["params"], group["params"]):
                fresh = self._state_for(param, group)
                if index in saved:
                    self._restore(param, fresh, saved[index], kinds)

    def _restore(self, param: torch.Tensor, fresh: dict, saved: dict, kinds: dict[str, str]) -> None:
        step = saved.get("step", 0)
        fresh["step"] = int(step.item() if isinstance(step, torch.Tensor) else step)
        if CORRECTION in fresh and CORRECTION in saved:
            fresh[CORRECTION].copy_(_convert_correction(saved[CORRECTION], fresh[CORRECTION].dtype).view_as(param))
        numel = param.numel()
        for name, kind in kinds.items():
            if name not in saved:
                continue
            stored = saved[name]
            if self.quantize and name + SCALES in saved and stored.dtype == fresh[name].dtype:
                fresh[name].copy_(stored)
                fresh[name + SCALES].copy_(saved[name + SCALES])
                continue
            values = self._read_state(saved, name, kind, numel).to(param.device)
            if values.numel() != numel:
                raise CheckpointError(
                    f"saved {name} holds {values.numel()} values, the parameter {numel}",
                    "load a state dict written for this model",
                )
            if self.quantize:
                self._store_states(fresh, {name: kind}, {name: values}, 0, numel)
            else:
                fresh[name].copy_(values)

    # ----------------------------------------------------- fp32 interchange
    def get_fp32_model_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """``model.state_dict()`` with full-precision weights (16-bit + correction, as fp32)."""
        by_name = dict(model.named_parameters(remove_duplicate=False))
        out = {}
        for name, value in model.state_dict().items():
            param = by_name.get(name)
            correction = self.state.get(param, {}).get(CORRECTION) if param is not None else None
            if param is not None and correction is not None:
                out[name] = reconstruct(param.detach(), correction)
            elif value.is_floating_point():
                out[name] = value.detach().float().clone()
            else:
                out[name] = value.detach().clone()
        return out

    @torch.no_grad()
    def set_fp32_model_state_dict(self, model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
        """Load an ordinary fp32 state dict: 16-bit weights *and* their corrections."""
        try:
            model.load_state_dict(state_dict)
        except RuntimeError as exc:
            raise CheckpointError(
                f"state dict does not fit the model: {str(exc).splitlines()[0][:200]}",
                "load a state dict written for this model",
            ) from exc
        for name, param in model.named_parameters(remove_duplicate=False):
            correction = self.state.get(param, {}).get(CORRECTION)
            if correction is not None:
                split_into(state_dict[name].to(param.device, torch.float32), param.data, correction)


def _code_slices(state: dict, name: str, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The codes and scales covering values ``[start, end)`` (``start`` is group-aligned)."""
    first_group = start // q.GROUP_SIZE
    groups = q.num_groups(end - start)
    codes = state[name][start : start + groups * q.GROUP_SIZE]
    return codes, state[name + SCALES][first_group : first_group + groups]


def _convert_correction(rho: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A correction saved with another width (int8 vs int16) means the same fraction of ULP/2."""
    if rho.dtype == dtype:
        return rho
    fraction = rho.float() / torch.iinfo(rho.dtype).max
    return torch.round(fraction * torch.iinfo(dtype).max).to(dtype)


BUCKET_LIMIT = 1 << 14  # tensors up to this many values are packed with others of their kind


def _grad(param: torch.Tensor) -> torch.Tensor:
    """The gradient of a parameter the step was given (step() passes only those that have one)."""
    return cast(torch.Tensor, param.grad)


def _packable(param: torch.Tensor) -> bool:
    return param.numel() <= BUCKET_LIMIT and param.data.is_contiguous() and _grad(param).is_contiguous()


def _limit(params: list[torch.Tensor], budget: int) -> list[list[torch.Tensor]]:
    """Split ``params`` into runs of at most ``budget`` values (one tensor may exceed it alone)."""
    runs: list[list[torch.Tensor]] = [[]]
    used = 0
    for param in params:
        size = q.padded_length(param.numel())
        if runs[-1] and used + size > budget:
            runs.append([])
            used = 0
        runs[-1].append(param)
        used += size
    return runs


def _check_grad(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> None:
    if _grad(param).is_sparse:
        raise ConfigError(
            f"{type(optimizer).__name__} does not support sparse gradients", "use a dense embedding (sparse=False)"
        )
