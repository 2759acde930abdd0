"""Patch whitening (as in cifar10-airbench): a frozen first layer that decorrelates image patches.

At the start of the run, the covariance of all ``k x k`` patches of some training images
is eigendecomposed; the first layer's filters are the eigenvectors scaled by
``1 / sqrt(eigenvalue + eps)`` plus their negations (so a following nonlinearity keeps
both signs), which makes the patch covariance the identity. The filters are frozen; only
the layer's bias trains, and only for the first part of the run (airbench: 3 of ~10
epochs). The network then starts from decorrelated inputs and needs fewer steps.

Surgery: the model's first ``Conv2d`` (definition order; or the one ``predicate`` picks)
becomes ``whitening (k x k, 2*C*k*k channels) -> GELU -> conv`` where the new conv has the
old one's geometry but reads the whitened channels (fresh weights). ``keep_size`` pads
right and bottom by ``k - 1`` so every later shape is unchanged (airbench's own net uses
no padding: pass ``keep_size=False`` to match it). Unlike airbench, the mean patch is
removed through the bias, so whitened outputs start zero-mean as well as unit-covariance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.core.time import Time
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.methods.surgery import Predicate, both, checked_predicate, find_modules, replace_modules, sample_inputs


def patch_statistics(images: torch.Tensor, kernel_size: int = 2, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (d,) and covariance (d, d) of all ``kernel_size`` patches of ``images`` (N, C, H, W),
    ``d = C * k * k`` in conv-weight order; accumulated in float64 a chunk at a time."""
    if images.ndim != 4:
        raise ConfigError(
            f"patch whitening needs image batches (N, C, H, W), got shape {tuple(images.shape)}",
            "use patch_whitening only on image workloads",
        )
    total, outer, count = None, None, 0
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].double()
        patches = F.unfold(x, kernel_size).transpose(1, 2).reshape(-1, x.shape[1] * kernel_size**2)
        total = patches.sum(0) if total is None else total + patches.sum(0)
        outer = patches.T @ patches if outer is None else outer + patches.T @ patches
        count += len(patches)
    if not count:
        raise ConfigError("no image patches to whiten", "give at least one image larger than the kernel")
    mean = total / count
    return mean, outer / count - torch.outer(mean, mean)


def whitening_filters(
    images: torch.Tensor, kernel_size: int = 2, eps: float = 5e-4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(filters (d, C, k, k), eigenvalues (d,), mean (d,))``: filter ``i`` is the ``i``-th
    eigenvector (largest first) of the patch covariance divided by ``sqrt(eigenvalue + eps)``."""
    mean, covariance = patch_statistics(images, kernel_size)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    filters = eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]
    channels = images.shape[1]
    return filters.reshape(-1, channels, kernel_size, kernel_size).float(), eigenvalues.float(), mean.float()


class WhiteningConv2d(nn.Module):
    """The frozen whitening layer: filters in a buffer (never trained), a trainable bias."""

    def __init__(self, in_channels: int, kernel_size: int = 2, keep_size: bool = True) -> None:
        super().__init__()
        if kernel_size < 1:
            raise ConfigError(f"whitening kernel_size must be >= 1, got {kernel_size}", "airbench uses 2")
        self.in_channels = in_channels
        self.kernel_size = kernel_size
        self.keep_size = keep_size
        dims = in_channels * kernel_size**2
        self.out_channels = 2 * dims
        self.register_buffer("weight", torch.zeros(2 * dims, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(2 * dims))

    @torch.no_grad()
    def fit(self, images: torch.Tensor, eps: float = 5e-4) -> torch.Tensor:
        """Set the filters from ``images``; returns the covariance eigenvalues (largest first)."""
        if images.shape[1] != self.in_channels:
            raise ConfigError(f"whitening expects {self.in_channels}-channel images, got {images.shape[1]}")
        filters, eigenvalues, mean = whitening_filters(images.detach().float().cpu(), self.kernel_size, eps)
        weight = torch.cat([filters, -filters])
        self.weight.copy_(weight.to(self.weight))
        self.bias.copy_((-(weight.flatten(1) @ mean)).to(self.bias))
        return eigenvalues

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.keep_size and self.kernel_size > 1:
            x = F.pad(x, (0, self.kernel_size - 1, 0, self.kernel_size - 1))
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, keep_size={self.keep_size}"


def insert_whitening_layer(
    model: nn.Module,
    in_channels: int,
    kernel_size: int = 2,
    keep_size: bool = True,
    predicate: Predicate | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> WhiteningConv2d:
    """Put an (unfitted) whitening layer in front of the model's first ``Conv2d`` (or the
    first one ``predicate`` accepts); returns it. Call ``layer.fit(images)`` before training."""
    candidates = find_modules(model, both(nn.Conv2d, predicate))
    if not candidates:
        raise ConfigError(
            "patch_whitening found no Conv2d to put the whitening layer in front of",
            "use it on convolutional image models",
        )
    first_name, first = candidates[0]
    if first.in_channels != in_channels or first.groups != 1:
        raise ConfigError(
            f"the first conv {first_name!r} reads {first.in_channels} channels (groups={first.groups}), "
            f"but the images have {in_channels}",
            "pass a predicate that picks the conv reading the images",
        )
    whitening = WhiteningConv2d(in_channels, kernel_size, keep_size)

    def build(name: str, conv: nn.Module) -> nn.Module:
        reader = nn.Conv2d(
            whitening.out_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            bias=conv.bias is not None,
            padding_mode=conv.padding_mode,
        )
        return nn.Sequential(whitening, nn.GELU(), reader)

    replace_modules(model, lambda name, module: module is first, build, optimizer)
    return whitening


def apply_patch_whitening(
    model: nn.Module,
    images: torch.Tensor,
    kernel_size: int = 2,
    eps: float = 5e-4,
    keep_size: bool = True,
    predicate: Predicate | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> WhiteningConv2d:
    """Insert a whitening layer fitted on ``images`` (N, C, H, W); returns the layer."""
    if images.ndim != 4:
        raise ConfigError(
            f"patch whitening needs image batches (N, C, H, W), got shape {tuple(images.shape)}",
            "use patch_whitening only on image workloads",
        )
    layer = insert_whitening_layer(model, images.shape[1], kernel_size, keep_size, predicate, optimizer)
    layer.fit(images, eps)
    return layer


def whitening_layers(model: nn.Module) -> list[WhiteningConv2d]:
    return [module for module in model.modules() if isinstance(module, WhiteningConv2d)]


class PatchWhitening(Algorithm):
    """Insert the whitening layer at INIT (so the optimizer sees the final model); fit it at
    FIT_START, inside training time as airbench counts it, from the first ``num_images``
    training inputs (a resumed run loads the fitted layer instead); stop training its bias
    at ``freeze_bias_at``."""

    name = "patch_whitening"
    touches = frozenset({"model"})
    data_parallel = False
    data_parallel_note = "each process would fit its whitening layer on its own samples"
    api_only = frozenset({"predicate"})  # a Python callable or class, not a CLI value
    priority = 10

    def __init__(
        self,
        kernel_size: int = 2,
        eps: float = 5e-4,
        num_images: int = 5000,
        freeze_bias_at: str = "0.3dur",
        keep_size: bool = True,
        *,
        predicate: Predicate | None = None,
    ) -> None:
        if kernel_size < 1 or num_images < 1 or eps < 0:
            raise ValueError("kernel_size and num_images must be >= 1 and eps >= 0")
        Time.parse(freeze_bias_at)
        self.kernel_size = kernel_size
        self.eps = eps
        self.num_images = num_images
        self.freeze_bias_at = freeze_bias_at
        self.keep_size = keep_size
        self._predicate = checked_predicate(predicate)
        self._layer: WhiteningConv2d | None = None

    def match(self, event: Event, state: State) -> bool:
        if event in (Event.INIT, Event.FIT_START):
            return True
        return event is Event.BATCH_START and self._layer is not None and self._layer.bias.requires_grad

    def apply(self, event: Event, state: State) -> None:
        if event is Event.INIT:
            probe = sample_inputs(state.train_data, 1)
            if probe.ndim != 4:
                raise ConfigError(
                    f"patch_whitening needs image inputs (N, C, H, W), got shape {tuple(probe.shape)}",
                    "use it only on image workloads",
                )
            self._layer = insert_whitening_layer(
                state.model, probe.shape[1], self.kernel_size, self.keep_size, self._predicate, state.optimizer
            )
        elif event is Event.FIT_START:
            if state.timestamp.batch == 0:
                self._layer.fit(sample_inputs(state.train_data, self.num_images).to(state.device), self.eps)
        elif state.reached(self.freeze_bias_at):
            self._layer.bias.requires_grad_(False)


CARD = MethodCard(
    name="patch_whitening",
    summary="Replace the first conv's input with a frozen layer that whitens image patches (airbench).",
    component="model",
    action="replace",
    mechanism="step-count",
    bottleneck=("compute",),
    paper=Paper("Keller Jordan", 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", "2404.00498"),
    export="cannot be removed (the rest of the net reads whitened channels); the whitening filters are a "
    "persistent buffer, so the model exports and reloads as it is.",
    not_worth_it="large images or long runs, where the first layer learns its own decorrelation anyway; "
    "non-image inputs. The fit (a pass over num_images images and one eigendecomposition) runs at "
    "FIT_START and is counted in training time, as airbench counts it.",
    effect="fewer steps to a target accuracy on small-image tasks (airbench's first trick)",
    applies_to=("image",),
    needs=("conv2d",),
    functional=("apply_patch_whitening", "insert_whitening_layer", "whitening_filters", "patch_statistics"),
)

register(CARD, PatchWhitening)
