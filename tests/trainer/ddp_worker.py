"""Worker for the data-parallel tests, started by ``torchrun`` (2 processes, gloo on CPU).

    torchrun --standalone --nproc_per_node 2 -m tests.trainer.ddp_worker equivalence OUT.pt
    torchrun --standalone --nproc_per_node 2 -m tests.trainer.ddp_worker methods OUT.json
    torchrun --standalone --nproc_per_node 2 -m tests.trainer.ddp_worker batchnorm OUT.json  # HASTEN_DATA: mnist

``equivalence``: train ``toy`` for a few steps at its global batch; rank 0 saves the final weights,
eval metrics and counters for the test to compare with a single process at the same batch.
``methods``: for each data-parallel method that holds per-process state, train a few steps and
check that every rank ends with the same weights and the same method state (a method whose
state drifted apart between replicas would show here).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from hasten.workloads import build_trainer

STEPS = 12
# data-parallel methods with state of their own, and a spec that makes them act within STEPS steps
STATEFUL = {
    "ema": "ema:decay=0.9",
    "lookahead": "lookahead:k=3",
    "data_echoing": "data_echoing:echo_factor=2",
    "mixup": "mixup",
    "label_smoothing": "label_smoothing",
    "gradient_clipping": "gradient_clipping:clipping_threshold=0.5",
    "muon": "muon",
}


def fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def tensors_of(value: object, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor inside a (nested) state dict, by path."""
    found: dict[str, torch.Tensor] = {}
    if isinstance(value, torch.Tensor):
        found[prefix] = value
    elif isinstance(value, dict):
        for key, item in value.items():
            found.update(tensors_of(item, f"{prefix}.{key}"))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found.update(tensors_of(item, f"{prefix}.{index}"))
    return found


def equivalence(out: str) -> None:
    trainer = build_trainer("toy", duration=f"{STEPS}ba", device="cpu", eval_interval=f"{STEPS}ba")
    result = trainer.fit()
    if dist.get_rank() == 0:
        torch.save(
            {
                "model": trainer.state.model.state_dict(),
                "final": result.final,
                "samples": result.samples,
                "steps": result.steps,
                "train_loss": trainer.state.train_loss,
                "communication": result.timing.get("communication", 0.0),
                "world_size": trainer.replicas.world_size,
            },
            out,
        )


def methods(out: str) -> None:
    report = {}
    for name, spec in STATEFUL.items():
        trainer = build_trainer("toy", [spec], duration=f"{STEPS}ba", device="cpu", eval_interval=f"{STEPS}ba")
        trainer.fit()
        weights = {"model": trainer.state.model.state_dict(), "optimizer": trainer.state.optimizer.state_dict()}
        own = [a.state_dict() for a in trainer.engine.algorithms]
        every: list[tuple[str, str]] = [("", "")] * dist.get_world_size()
        dist.all_gather_object(every, (fingerprint(tensors_of(weights)), fingerprint(tensors_of(own))))
        report[name] = {
            "weights_same": len({w for w, _ in every}) == 1,
            "method_state_same": len({m for _, m in every}) == 1,
            "method_tensors": len(tensors_of(own)),
        }
    if dist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump(report, f)


def batchnorm(out: str) -> None:
    """mnist's CNN has BatchNorm: each rank's running statistics see only its part of the batch;
    evaluation and checkpoints use rank 0's on every rank, so the replicas end identical."""
    trainer = build_trainer("mnist", duration="4ba", device="cpu", eval_interval="4ba")
    trainer.fit()
    every: list[str] = [""] * dist.get_world_size()
    dist.all_gather_object(every, fingerprint(trainer.state.model.state_dict()))
    if dist.get_rank() == 0:
        buffers = sum(1 for name, _ in trainer.state.model.named_buffers() if "running" in name)
        Path(out).write_text(json.dumps({"same_on_every_rank": len(set(every)) == 1, "running_stats": buffers}))


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, path = sys.argv[1], sys.argv[2]
    {"equivalence": equivalence, "methods": methods, "batchnorm": batchnorm}[mode](path)
    dist.destroy_process_group()
