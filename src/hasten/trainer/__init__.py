"""The Trainer, its timing buckets, checkpoints and data-source adapters."""

from hasten.trainer.result import FitResult
from hasten.trainer.sources import BatchSource, IterableSource, as_source
from hasten.trainer.timing import TimingBuckets
from hasten.trainer.trainer import Trainer, default_loss, resolve_device, seed_everything

__all__ = [
    "BatchSource",
    "FitResult",
    "IterableSource",
    "TimingBuckets",
    "Trainer",
    "as_source",
    "default_loss",
    "resolve_device",
    "seed_everything",
]
