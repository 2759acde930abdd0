"""``toy``: a seconds-long classification task on generated data, for tests and smoke runs."""

from __future__ import annotations

import torch
from torch import nn

from hasten.core.metrics import Accuracy
from hasten.data.memory import TensorBatches
from hasten.optim.schedules import WarmupCosine
from hasten.trainer.trainer import default_loss
from hasten.workloads.base import Components, Workload, register_workload

FEATURES, CLASSES, TRAIN, TEST = 32, 8, 4096, 1024


def make_toy_data(n: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy Gaussian clusters around fixed class centres; the same data for every run seed."""
    centres = torch.randn(CLASSES, FEATURES, generator=torch.Generator().manual_seed(1234))
    sampler = torch.Generator().manual_seed(5678 + offset)
    y = torch.randint(0, CLASSES, (n,), generator=sampler)
    x = centres[y] + 1.5 * torch.randn(n, FEATURES, generator=sampler)
    return x, y


@register_workload
class Toy(Workload):
    name = "toy"
    summary = "Generated 32-feature, 8-class data and a small MLP; trains in seconds"
    modality = "tabular"
    metric = "accuracy"
    higher_is_better = True
    target = 0.90
    default_duration = "10ep"
    eval_interval = "2ep"
    baseline = "MLP 32-256-256-8, SGD nesterov lr 0.1 wd 5e-4, batch 128, warm-up 5% then cosine"
    target_note = "the baseline reaches 0.93-0.94 in 10 epochs; 0.90 leaves room for seed noise"

    def build(self, *, seed: int, device: torch.device, data_dir: str | None = None) -> Components:
        x_train, y_train = make_toy_data(TRAIN, 0)
        x_test, y_test = make_toy_data(TEST, 1)
        model = nn.Sequential(
            nn.Linear(FEATURES, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, CLASSES)
        )
        return Components(
            model=model,
            train_data=TensorBatches(x_train, y_train, 128, seed=seed, device=device),
            eval_data=TensorBatches(x_test, y_test, 512, shuffle=False, drop_last=False, device=device),
            loss_fn=default_loss,
            metrics={"accuracy": Accuracy()},
            optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
            scheduler=WarmupCosine(warmup=0.05),
        )
