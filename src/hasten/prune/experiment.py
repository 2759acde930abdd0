"""One pruning experiment: a trained model, pruned by a strategy to a compression, then fine-tuned.

The protocol follows Blalock et al.'s checklist: every strategy starts from the *same* trained
model per seed (the workload's baseline, trained once and cached beside the run store), is pruned
in one shot, evaluated, then fine-tuned with the workload's own optimizer and schedule laid out over
``finetune`` with the learning rate scaled by ``lr_scale``, and evaluated again. The unpruned
control (``compression=1``, strategy ``none``) runs through the same fine-tuning code. Each
experiment is one fine-tuning run in the run store; its evaluation at step 0 is the quality before
fine-tuning, and ``config["pruning"]`` holds the size, multiply-add and timing figures.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from hasten.prune.masks import (
    apply_masks,
    budget_for,
    nonzero_count,
    parameter_count,
    prunable_layers,
)
from hasten.prune.metrics import interleaved_inference_ratio, multiply_adds
from hasten.prune.strategies import check_strategy, compute_masks
from hasten.store.store import RunStore
from hasten.workloads.base import get_workload
from hasten.workloads.runner import build_trainer

CONTROL = "none"


def weight_now(module: torch.nn.Module) -> torch.Tensor:
    return cast(torch.Tensor, module.weight)


@dataclass(frozen=True)
class PruneSettings:
    """Everything but the strategy, compression and seed: the same for every point of a benchmark."""

    pretrain: str | None = None  # None: the workload's default duration
    finetune: str = "1ep"
    lr_scale: float = 0.1
    include_classifier: bool = False
    device: str = "auto"
    data_dir: str | None = None


def recipe_for(strategy: str, compression: float) -> str:
    return "prune:unpruned" if strategy == CONTROL else f"prune:{strategy}@{compression:g}x"


def finished_pruning(
    store: RunStore, workload: str, strategy: str, compression: float, seed: int, settings: PruneSettings
) -> dict[str, Any] | None:
    """The results of a completed run of this very point and settings, if the store has one (so an
    interrupted benchmark continues instead of starting over)."""
    pretrain = settings.pretrain or get_workload(workload).default_duration
    for record in store.list_runs(workload, recipe=recipe_for(strategy, compression), status="completed"):
        found = record.config.get("pruning") or {}
        if (
            record.seed == seed
            and "after" in found
            and found.get("pretrain") == pretrain
            and found.get("finetune") == settings.finetune
            and found.get("lr_scale") == settings.lr_scale
            and found.get("include_classifier") == settings.include_classifier
        ):
            return found
    return None


def pretrained_weights(workload: str, seed: int, settings: PruneSettings, store: RunStore) -> dict[str, torch.Tensor]:
    """The workload baseline trained for ``settings.pretrain`` with ``seed``: trained (and recorded in
    ``store``) the first time, then read from a cache beside the store."""
    duration = settings.pretrain or get_workload(workload).default_duration
    cache = Path(store.path).parent / "prune-pretrained" / f"{workload}-{duration}-seed{seed}.pt"
    if cache.exists():
        return torch.load(cache, map_location="cpu", weights_only=True)
    trainer = build_trainer(
        workload,
        duration=duration,
        seed=seed,
        device=settings.device,
        data_dir=settings.data_dir,
        store=store,
        config={"prune_pretraining": True},
    )
    result = trainer.fit()
    if result.status != "completed":
        raise RuntimeError(f"pretraining {workload} seed {seed} ended {result.status}: {result.error}")
    weights = {k: v.detach().cpu().clone() for k, v in trainer.state.model.state_dict().items()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache.with_name(cache.name + f".{os.getpid()}.tmp")
    torch.save(weights, temporary)
    os.replace(temporary, cache)
    return weights


def run_pruning(
    workload: str, strategy: str, compression: float, *, seed: int, settings: PruneSettings, store: RunStore
) -> dict[str, Any]:
    """Prune, evaluate, fine-tune, evaluate; record the run; return ``config["pruning"]`` with results."""
    if strategy != CONTROL:
        check_strategy(strategy)
    weights = pretrained_weights(workload, seed, settings, store)
    trainer = build_trainer(
        workload, duration=settings.finetune, seed=seed, device=settings.device, data_dir=settings.data_dir, store=store
    )
    state = trainer.state
    model = state.model
    model.load_state_dict(weights)
    dense = copy.deepcopy(model)
    layers = prunable_layers(model, settings.include_classifier)
    if strategy == CONTROL:
        compression = 1.0
    else:
        budget = budget_for(model, layers, compression)
        batch = next(iter(state.train_data.batches(0)))
        batch = tuple(t.to(state.device) if torch.is_tensor(t) else t for t in batch)
        apply_masks(
            layers, compute_masks(strategy, model, layers, budget, seed=seed, batch=batch, loss_fn=state.loss_fn)
        )
    assert state.eval_data is not None
    sample = next(iter(state.eval_data))[0][:32].to(state.device)
    macs = multiply_adds(model, sample[:1])
    size, nonzero = parameter_count(model), nonzero_count(model)
    pruning: dict[str, Any] = {
        "strategy": strategy,
        "compression_target": compression,
        "seed": seed,
        "pretrain": settings.pretrain or get_workload(workload).default_duration,
        "finetune": settings.finetune,
        "lr_scale": settings.lr_scale,
        "include_classifier": settings.include_classifier,
        "prunable_layers": list(layers),
        "size": size,
        "nonzero": nonzero,
        "compression": size / nonzero,
        "macs_dense": macs.dense,
        "macs_nonzero": macs.nonzero,
        "theoretical_speedup": macs.speedup,
        "inference_time_ratio": interleaved_inference_ratio(model, dense, sample),
    }
    base_factory = state.optimizer_factory

    def scaled_optimizer(m: torch.nn.Module) -> torch.optim.Optimizer:
        optimizer = base_factory(m)  # type: ignore[misc]
        for group in optimizer.param_groups:
            group["lr"] *= settings.lr_scale
        return optimizer

    state.optimizer_factory = scaled_optimizer
    state.run_info["recipe"] = recipe_for(strategy, compression)
    state.run_info["methods"] = [{"name": "prune", "params": {"strategy": strategy, "compression": compression}}]
    state.run_info.setdefault("config", {})["pruning"] = pruning
    trainer.eval_at_start = True
    result = trainer.fit()
    metric = state.run_info["metric"]
    before = result.evals[0].metrics if result.evals and result.evals[0].step == 0 else {}
    pruning.update(
        before=before,
        after=dict(result.final),
        status=result.status,
        run_id=result.run_id,
        metric=metric,
        finetune_time_s=result.train_time_s,
        masked_weights_after=sum(int((weight_now(m) == 0).sum()) for m in layers.values()),
    )
    record = store.get_run(result.run_id, with_evals=False)
    store.update_run(result.run_id, config={**record.config, "pruning": pruning})
    return pruning
