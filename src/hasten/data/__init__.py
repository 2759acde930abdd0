"""Data: official file formats, located and verified, and fast in-memory batching."""

from hasten.data.memory import TensorBatches

__all__ = ["TensorBatches"]
