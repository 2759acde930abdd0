"""Progressive resizing (fast.ai): train on small images first, grow them, finish at full size.

The schedule is Composer's: ``initial_scale`` until ``delay_fraction`` of the run, then a linear
ramp that reaches full size when ``finetune_fraction`` of the run is left; sides are rounded to
a multiple of ``size_increment``. Early steps cost about ``scale**2`` of a full-size step. It
reads ``state.progress`` only, so it resumes exactly (crop positions use torch's global RNG,
which checkpoints capture).

Differences from Composer's ``resize_batch``: ``"resize"`` resamples with antialiased bilinear
interpolation by default (Composer's code uses nearest neighbour, which aliases when it
shrinks; ``interpolation="nearest"`` reproduces it); each side is rounded to
``size_increment`` on its own (Composer rounds the width and scales the height by the same
factor) and never below one increment; ``"crop"`` draws its offset from every position that
fits (Composer never picks the last one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.methods.surgery import require_smaller_images_fit

MODES = ("resize", "crop")
INTERPOLATIONS = ("bilinear", "nearest")


def progressive_resizing_scale(
    progress: float, initial_scale: float = 0.5, delay_fraction: float = 0.5, finetune_fraction: float = 0.2
) -> float:
    """The side scale at ``progress`` (fraction of the run done): flat, linear ramp, then 1.0."""
    ramp = 1.0 - finetune_fraction - delay_fraction
    if progress < delay_fraction:
        done = 0.0
    elif ramp <= 0:
        done = 1.0
    else:
        done = min((progress - delay_fraction) / ramp, 1.0)
    return initial_scale + (1.0 - initial_scale) * done


def scaled_side(side: int, scale: float, size_increment: int = 4) -> int:
    """``side * scale`` rounded to a multiple of ``size_increment`` (at least one increment, at most ``side``)."""
    if scale >= 1.0:
        return side
    pinned = round(side * scale / size_increment) * size_increment
    return min(max(pinned, size_increment), side)


def resize_batch(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    scale_factor: float,
    mode: str = "resize",
    resize_targets: bool = False,
    size_increment: int = 1,
    interpolation: str = "bilinear",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shrink an image batch (N, C, H, W) by ``scale_factor``: ``"resize"`` resamples the whole image
    (``interpolation``: antialiased bilinear, or Composer's nearest neighbour), ``"crop"`` takes one
    random crop for the batch. ``resize_targets`` shrinks dense targets (N, H, W) the same way
    (nearest), for segmentation."""
    if mode not in MODES:
        raise ConfigError(f"unknown progressive resizing mode {mode!r}", f"use one of {', '.join(MODES)}")
    if interpolation not in INTERPOLATIONS:
        raise ConfigError(
            f"unknown progressive resizing interpolation {interpolation!r}", f"use one of {', '.join(INTERPOLATIONS)}"
        )
    if inputs.ndim != 4:
        raise ConfigError(
            f"progressive resizing needs image batches (N, C, H, W); got shape {tuple(inputs.shape)}",
            "use it on image workloads (for text, see seq_length_warmup)",
        )
    height, width = inputs.shape[-2:]
    new_h, new_w = scaled_side(height, scale_factor, size_increment), scaled_side(width, scale_factor, size_increment)
    if (new_h, new_w) == (height, width):
        return inputs, targets
    if mode == "crop":
        top = int(torch.randint(height - new_h + 1, (1,)))
        left = int(torch.randint(width - new_w + 1, (1,)))
        cropped = inputs[:, :, top : top + new_h, left : left + new_w]
        if resize_targets:
            targets = targets[..., top : top + new_h, left : left + new_w]
        return cropped, targets
    if not torch.is_floating_point(inputs):
        raise ConfigError(f"resizing needs float images, got {inputs.dtype}", "normalize the images to float first")
    if interpolation == "nearest":
        resized = F.interpolate(inputs, size=(new_h, new_w), mode="nearest")
    else:
        resized = F.interpolate(inputs, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
    if resize_targets:
        dense = targets.unsqueeze(1).float() if targets.ndim == 3 else targets.float()
        dense = F.interpolate(dense, size=(new_h, new_w), mode="nearest")
        targets = (dense.squeeze(1) if targets.ndim == 3 else dense).to(targets.dtype)
    return resized, targets


class ProgressiveResizing(Algorithm):
    """Resizes each training batch at BATCH_START (after alternating_flip and selective_backprop)."""

    name = "progressive_resizing"
    touches = frozenset({"batch"})
    data_parallel = True
    removes = frozenset({"fixed_input_shape"})
    priority = -10

    def __init__(
        self,
        mode: str = "resize",
        initial_scale: float = 0.5,
        delay_fraction: float = 0.5,
        finetune_fraction: float = 0.2,
        size_increment: int = 4,
        resize_targets: bool = False,
        interpolation: str = "bilinear",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        if not 0.0 < initial_scale <= 1.0:
            raise ValueError(f"initial_scale must be in (0, 1], got {initial_scale}")
        if not (0.0 <= delay_fraction <= 1.0 and 0.0 <= finetune_fraction <= 1.0):
            raise ValueError("delay_fraction and finetune_fraction must be in [0, 1]")
        if delay_fraction + finetune_fraction > 1.0:
            total = delay_fraction + finetune_fraction
            raise ValueError(f"delay_fraction + finetune_fraction must be <= 1, got {total}")
        if size_increment < 1:
            raise ValueError(f"size_increment must be >= 1, got {size_increment}")
        self.mode = mode
        self.initial_scale = initial_scale
        self.delay_fraction = delay_fraction
        self.finetune_fraction = finetune_fraction
        self.size_increment = size_increment
        self.resize_targets = resize_targets
        self.interpolation = interpolation

    def scale_at(self, progress: float) -> float:
        return progressive_resizing_scale(progress, self.initial_scale, self.delay_fraction, self.finetune_fraction)

    def match(self, event: Event, state: State) -> bool:
        return event in (Event.FIT_START, Event.BATCH_START)

    def apply(self, event: Event, state: State) -> None:
        if event is Event.FIT_START:  # a model that needs full-size images fails here, not mid-step
            require_smaller_images_fit(
                state.model,
                state.train_data,
                lambda h, w: (
                    scaled_side(h, self.initial_scale, self.size_increment),
                    scaled_side(w, self.initial_scale, self.size_increment),
                ),
                self.name,
                state.device,
            )
            return
        scale = self.scale_at(state.progress)
        inputs, targets = resize_batch(
            state.inputs, state.targets, scale, self.mode, self.resize_targets, self.size_increment, self.interpolation
        )
        state.batch = (inputs, targets)
        state.extra[self.name] = {"scale": scale, "size": tuple(inputs.shape[-2:])}


register(
    MethodCard(
        name="progressive_resizing",
        summary="Train on downscaled images early, ramp to full size, finish at full size",
        component="data",
        action="restrict",
        mechanism="step-cost",
        bottleneck=("compute",),
        when="0.0-0.8dur",
        paper=Paper(
            "Jeremy Howard, Sylvain Gugger",
            2020,
            "Deep Learning for Coders with fastai and PyTorch, ch. 7 (progressive resizing; no arXiv paper)",
            None,
        ),
        not_worth_it=(
            "data-bound runs (smaller images speed up the model, so the loader waits more: Composer saw this on "
            "ImageNet); models whose cost does not scale with resolution; very small images (CIFAR's 32 px at "
            "scale 0.5 is 16 px, where little detail is left: check with a tradeoff curve); models with a fixed input "
            "size (flatten then linear) are refused before training"
        ),
        effect="compute per step falls to about scale^2 (0.25x at scale 0.5) in the low-resolution phase. "
        "Differs from Composer: resize mode resamples with antialiased bilinear by default (Composer's code: "
        "nearest neighbour, interpolation=nearest), each side is rounded to size_increment on its own, and crop "
        "offsets cover every position",
        applies_to=("image",),
        functional=("resize_batch", "progressive_resizing_scale", "scaled_side"),
    ),
    ProgressiveResizing,
)
