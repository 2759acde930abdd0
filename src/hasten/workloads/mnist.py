"""``mnist``: the smoke workload. A small CNN on MNIST to >= 99% test accuracy in under a minute."""

from __future__ import annotations

import torch

from hasten.core.metrics import Accuracy
from hasten.data import mnist as mnist_data
from hasten.data.augment import Normalize
from hasten.data.memory import TensorBatches
from hasten.models.mnist import MnistCNN
from hasten.optim.schedules import WarmupLinear
from hasten.trainer.trainer import default_loss
from hasten.workloads.base import Components, Workload, register_workload

BATCH, EVAL_BATCH, LR, MOMENTUM, WEIGHT_DECAY, WARMUP = 128, 500, 0.05, 0.9, 5e-4, 0.1


@register_workload
class Mnist(Workload):
    name = "mnist"
    summary = "Small CNN (conv 16-32, linear 128) on MNIST; the smoke workload"
    modality = "image"
    metric = "accuracy"
    higher_is_better = True
    target = 0.991
    default_duration = "2ep"
    eval_interval = "0.25ep"
    baseline = (
        "CNN 16-32-128, SGD nesterov lr 0.05 momentum 0.9 wd 5e-4, batch 128, warm-up 10% then linear decay, fp32"
    )
    target_note = (
        "test accuracy; the baseline scored 0.9916 / 0.9915 / 0.9912 (seeds 0-2, 2-core CPU): "
        "mean 0.9914 - spread 0.0004 = 0.9910 (docs/workloads.md)"
    )

    def build(self, *, seed: int, device: torch.device, data_dir: str | None = None) -> Components:
        train, test = mnist_data.load_mnist("train", data_dir), mnist_data.load_mnist("test", data_dir)
        normalize = Normalize(mnist_data.MEAN, mnist_data.STD)
        return Components(
            model=MnistCNN(),
            train_data=TensorBatches(*train.tensors(), BATCH, seed=seed, transform=normalize, device=device),
            eval_data=TensorBatches(
                *test.tensors(), EVAL_BATCH, shuffle=False, drop_last=False, transform=normalize, device=device
            ),
            loss_fn=default_loss,
            metrics={"accuracy": Accuracy()},
            optimizer=lambda model: torch.optim.SGD(
                model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY
            ),
            scheduler=WarmupLinear(warmup=WARMUP),
            extra={"data_source": train.source},
        )
