"""ColOut (Stephenson, MosaicML Composer): drop a random share of the rows and columns of the images.

Batch-wise, as Composer's default: the same rows and columns are dropped from every image in
the batch, on the device, once per batch. With ``p_row = p_col = 0.15`` an image keeps about
72% of its pixels, so convolution cost falls by about that much; the content barely changes.
"""

from __future__ import annotations

import torch

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.methods.surgery import require_smaller_images_fit


def kept_count(size: int, drop_fraction: float) -> int:
    """How many of ``size`` rows (or columns) ColOut keeps."""
    return int((1.0 - drop_fraction) * size)


def kept_indices(size: int, drop_fraction: float, device: torch.device | None = None) -> torch.Tensor:
    """A random sorted subset of ``range(size)`` of length ``kept_count(size, drop_fraction)``."""
    return torch.randperm(size, device=device)[: kept_count(size, drop_fraction)].sort().values


def colout_batch(inputs: torch.Tensor, p_row: float = 0.15, p_col: float = 0.15) -> torch.Tensor:
    """Drop the same random rows (H) and columns (W) from every image of an (N, C, H, W) batch.

    Draws rows first, then columns, from torch's global RNG.
    """
    if inputs.ndim != 4:
        raise ConfigError(
            f"colout needs image batches (N, C, H, W); got shape {tuple(inputs.shape)}", "use colout on image workloads"
        )
    rows = kept_indices(inputs.shape[-2], p_row, inputs.device)
    cols = kept_indices(inputs.shape[-1], p_col, inputs.device)
    return inputs.index_select(-2, rows).index_select(-1, cols)


class ColOut(Algorithm):
    """Drops rows and columns at BATCH_START; the output size is the same every step."""

    name = "colout"
    touches = frozenset({"batch"})
    data_parallel = True
    priority = -10

    def __init__(self, p_row: float = 0.15, p_col: float = 0.15) -> None:
        for label, value in (("p_row", p_row), ("p_col", p_col)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{label} must be in [0, 1), got {value}")
        self.p_row = p_row
        self.p_col = p_col

    def match(self, event: Event, state: State) -> bool:
        return event in (Event.FIT_START, Event.BATCH_START)

    def apply(self, event: Event, state: State) -> None:
        if event is Event.FIT_START:  # a model that needs full-size images fails here, not mid-step
            require_smaller_images_fit(
                state.model,
                state.train_data,
                lambda h, w: (kept_count(h, self.p_row), kept_count(w, self.p_col)),
                self.name,
                state.device,
            )
            return
        state.inputs = colout_batch(state.inputs, self.p_row, self.p_col)


register(
    MethodCard(
        name="colout",
        summary="Drop a random 15% of image rows and columns (same ones across the batch)",
        component="data",
        action="restrict",
        mechanism="step-cost",
        bottleneck=("compute", "host"),
        paper=Paper(
            "Cory Stephenson (MosaicML)",
            2021,
            "ColOut, a Composer method card (no paper)",
            None,
        ),
        not_worth_it=(
            "when accuracy matters more than speed on small images (Composer measured about -1% on CIFAR-10, "
            "-0.2% on ImageNet, yet Pareto-better for ResNet-56 and ResNet-50); stacked with other resolution "
            "cuts (progressive resizing) the returns diminish; models with a fixed input size (flatten then linear, as "
            "MnistCNN) cannot take the smaller images and are refused before training"
        ),
        effect="about (1 - p_row)(1 - p_col) of the pixels per step (0.72x at 0.15/0.15); "
        "done on the device, no host work",
        applies_to=("image",),
        functional=("colout_batch",),
    ),
    ColOut,
)
