"""CutMix (Yun et al. 2019): paste a box from a paired image, and mix the labels by the box's area.

With ``lam ~ Beta(alpha, alpha)``, the box has sides ``H * sqrt(1 - lam)`` and ``W * sqrt(1 - lam)``
around a uniformly drawn centre and is clipped to the image; ``lam`` is then corrected to the
share of the image left untouched. The loss is ``lam * loss(y) + (1 - lam) * loss(y[perm])``,
as for MixUp (shared ``LabelMixing`` logic), so label smoothing composes with it exactly.
"""

from __future__ import annotations

import torch

from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.mixup import LabelMixing, mixed_loss, sample_mixing
from hasten.methods.registry import register

Box = tuple[int, int, int, int]


def cutmix_bbox(height: int, width: int, mixing: float) -> Box:
    """``(top, left, bottom, right)`` of a box with area about ``(1 - mixing)`` of the image, centre
    drawn uniformly (torch's global RNG), clipped to the image as in the paper."""
    cut = (1.0 - mixing) ** 0.5
    cut_h, cut_w = int(height * cut), int(width * cut)
    centre_y = int(torch.randint(height, (1,)))
    centre_x = int(torch.randint(width, (1,)))
    top, bottom = max(centre_y - cut_h // 2, 0), min(centre_y + cut_h // 2, height)
    left, right = max(centre_x - cut_w // 2, 0), min(centre_x + cut_w // 2, width)
    return top, left, bottom, right


def cutmix_batch(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 1.0,
    *,
    mixing: float | None = None,
    bbox: Box | None = None,
    permutation: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float, Box]:
    """Paste a box of each paired image into each image.

    Returns ``(inputs_cut, targets[perm], lam, bbox)`` where ``lam`` is the untouched share of
    the image: train with ``mixed_loss(loss_fn, model(inputs_cut), targets, targets_perm, lam)``.
    Random draws, in order: ``lam``, the box centre, the pairing (each skipped if given).
    """
    if inputs.ndim != 4:
        raise ConfigError(
            f"cutmix needs image batches (N, C, H, W); got shape {tuple(inputs.shape)}",
            "use cutmix on image workloads",
        )
    height, width = inputs.shape[-2:]
    if bbox is None:
        lam = sample_mixing(alpha) if mixing is None else float(mixing)
        bbox = cutmix_bbox(height, width, lam)
    if permutation is None:
        permutation = torch.randperm(inputs.shape[0], device=inputs.device)
    top, left, bottom, right = bbox
    cut = inputs.clone()
    cut[:, :, top:bottom, left:right] = inputs[permutation, :, top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (height * width)
    return cut, targets[permutation], lam, bbox


class CutMix(LabelMixing):
    name = "cutmix"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = alpha

    def _mix(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        cut, targets_perm, lam, _ = cutmix_batch(inputs, targets, self.alpha)
        return cut, targets_perm, lam


__all__ = ["CutMix", "cutmix_batch", "cutmix_bbox", "mixed_loss"]

register(
    MethodCard(
        name="cutmix",
        summary="Paste a box from a paired image and mix the labels by its area (loss interpolated)",
        component="data",
        action="augment",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper(
            "Sangdoo Yun, Dongyoon Han, Seong Joon Oh, Sanghyuk Chun, Junsuk Choe, Youngjoon Yoo",
            2019,
            "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable Features",
            "1905.04899",
        ),
        not_worth_it=(
            "short runs (a regularizer: it pays once the baseline starts to overfit); stacked with other "
            "strong regularizers the gains are sublinear (Composer's card); not for text"
        ),
        effect="no change in step cost (one box per batch, on the device); fewer steps to quality on long runs",
        applies_to=("image",),
        functional=("cutmix_batch", "cutmix_bbox", "mixed_loss"),
    ),
    CutMix,
)
