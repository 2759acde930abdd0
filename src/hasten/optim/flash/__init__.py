"""FlashOptim in plain PyTorch: bf16 weights + integer corrections, companded 8-bit states.

After Gonzalez Ortiz, Gupta, Renard, ..., Blalock, "FlashOptim: Optimizers for Memory
Efficient Training" (2026, arXiv 2602.23349). Runs on CPU and GPU; see docs/flashoptim.md.
"""

from hasten.optim.flash.base import FlashOptimizer
from hasten.optim.flash.cast import cast_model, model_dtype
from hasten.optim.flash.gradient_release import GradientRelease, enable_gradient_release
from hasten.optim.flash.memory import MemoryReport, checkpoint_bytes, memory_report
from hasten.optim.flash.optimizers import FlashAdam, FlashAdamW, FlashLion, FlashSGD, FlashSGDW

__all__ = [
    "FlashAdam",
    "FlashAdamW",
    "FlashLion",
    "FlashOptimizer",
    "FlashSGD",
    "FlashSGDW",
    "GradientRelease",
    "MemoryReport",
    "cast_model",
    "checkpoint_bytes",
    "enable_gradient_release",
    "memory_report",
    "model_dtype",
]
