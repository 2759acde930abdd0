"""BlurPool (Zhang 2019): low-pass filter before every downsampling step, so strided layers stop aliasing.

A strided convolution or max-pool samples a feature map below its Nyquist rate; small
shifts of the input then change the output a lot. Zhang's fix is to blur (a fixed binomial
filter, applied per channel) and only then subsample:

- max-pool(k, stride s)      -> max-pool(k, stride 1), then blur-and-subsample(stride s);
- strided conv(stride s)     -> blur(stride 1), then the same conv (``blur_first=True``,
  cheap: the conv still runs strided), or conv(stride 1) then blur-and-subsample
  (``blur_first=False``, the paper's ConvBlurPool, about s*s times the conv's work).

Output shapes are unchanged (padding is chosen so), and the original conv keeps its
parameters, so an existing optimizer still holds them.

The blur pads by reflection (``padding_mode="reflect"``), as Zhang's reference code does, so
borders are not darkened; Composer's ``blur_2d`` pads with zeros (``padding_mode="zeros"``
reproduces it). Other differences from Composer: ``filter_size`` 1-7 (Composer: 3 only), a
reflect pad wider than a tiny map falls back to replicate (Composer skips the blur), and
only downsampling max-pools without ``ceil_mode``/``return_indices`` are replaced (Composer
replaces every ``MaxPool2d``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.methods.surgery import Predicate, checked_predicate, replace_modules, require_some

PADDING_MODES = ("reflect", "replicate", "zeros")


def binomial_filter(size: int) -> torch.Tensor:
    """The ``size x size`` binomial low-pass filter (rows of Pascal's triangle), summing to 1."""
    if not 1 <= size <= 7:
        raise ConfigError(f"blur filter_size must be between 1 and 7, got {size}", "use 3 (the usual choice)")
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float64)
    kernel = torch.outer(row, row)
    return (kernel / kernel.sum()).float()


def blur_2d(
    x: torch.Tensor, kernel: torch.Tensor, stride: int | tuple[int, int] = 1, padding_mode: str = "reflect"
) -> torch.Tensor:
    """Blur each channel of ``x`` with ``kernel`` (k x k or C x 1 x k x k), then keep every
    ``stride``-th pixel. Padding of ``k - 1`` keeps ``ceil(size / stride)`` outputs per side."""
    channels = x.shape[1]
    if kernel.ndim == 2:
        kernel = kernel.view(1, 1, *kernel.shape)
    kernel = kernel.to(dtype=x.dtype).expand(channels, 1, *kernel.shape[-2:])
    size = kernel.shape[-1]
    before, after = (size - 1) // 2, size // 2
    if before or after:
        mode = padding_mode
        if mode == "reflect" and min(x.shape[-2:]) <= max(before, after):
            mode = "replicate"  # reflection needs more pixels than the pad width
        if mode == "zeros":
            x = F.pad(x, (before, after, before, after))
        else:
            x = F.pad(x, (before, after, before, after), mode=mode)
    return F.conv2d(x, kernel, stride=stride, groups=channels)


class BlurPool2d(nn.Module):
    """Blur then subsample by ``stride``: Zhang's anti-aliased replacement for plain subsampling."""

    def __init__(
        self, channels: int, stride: int | tuple[int, int] = 2, filter_size: int = 3, padding_mode: str = "reflect"
    ) -> None:
        super().__init__()
        if padding_mode not in PADDING_MODES:
            raise ConfigError(f"unknown blur padding_mode {padding_mode!r}", f"use one of {', '.join(PADDING_MODES)}")
        self.channels = channels
        self.stride = stride
        self.padding_mode = padding_mode
        kernel = binomial_filter(filter_size)
        self.register_buffer(
            "kernel", kernel.view(1, 1, filter_size, filter_size).repeat(channels, 1, 1, 1), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return blur_2d(x, self.kernel, self.stride, self.padding_mode)

    def extra_repr(self) -> str:
        return f"{self.channels}, stride={self.stride}, filter_size={self.kernel.shape[-1]}"


class BlurMaxPool2d(nn.Module):
    """Max-pool densely (stride 1), then blur-subsample: same output shape as the max-pool it replaces."""

    def __init__(self, pool: nn.MaxPool2d, filter_size: int = 3, padding_mode: str = "reflect") -> None:
        super().__init__()
        self.kernel_size, self.padding, self.dilation = pool.kernel_size, pool.padding, pool.dilation
        self.stride = pool.stride
        self.filter_size = filter_size
        self.padding_mode = padding_mode
        self.register_buffer(
            "kernel", binomial_filter(filter_size).view(1, 1, filter_size, filter_size), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dense = F.max_pool2d(x, self.kernel_size, stride=1, padding=self.padding, dilation=self.dilation)
        return blur_2d(dense, self.kernel, self.stride, self.padding_mode)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, filter_size={self.filter_size}"


class BlurConv2d(nn.Module):
    """A strided conv with a blur in front (``blur_first``) or a blur-subsample behind it.
    The original conv is kept as ``.conv`` with its parameters."""

    def __init__(
        self, conv: nn.Conv2d, blur_first: bool = True, filter_size: int = 3, padding_mode: str = "reflect"
    ) -> None:
        super().__init__()
        self.blur_first = blur_first
        self.stride = conv.stride
        if blur_first:
            self.blur = BlurPool2d(conv.in_channels, 1, filter_size, padding_mode)
        else:
            conv.stride = (1, 1)
            self.blur = BlurPool2d(conv.out_channels, self.stride, filter_size, padding_mode)
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.blur_first:
            return self.conv(self.blur(x))
        return self.blur(self.conv(x))


def _downsamples(stride: int | tuple) -> bool:
    strides = stride if isinstance(stride, tuple) else (stride, stride)
    return max(strides) > 1


def apply_blurpool(
    model: nn.Module,
    replace_convs: bool = True,
    replace_maxpools: bool = True,
    blur_first: bool = True,
    min_channels: int = 16,
    filter_size: int = 3,
    padding_mode: str = "reflect",
    predicate: Predicate | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> int:
    """Anti-alias every strided ``Conv2d`` with at least ``min_channels`` inputs and every
    downsampling ``MaxPool2d`` (those for which ``predicate(name, module)`` holds, if given).
    Returns how many modules were replaced. Pools with ``ceil_mode`` or ``return_indices``
    are left alone (their shapes could not be kept)."""
    if padding_mode not in PADDING_MODES:
        raise ConfigError(f"unknown blur padding_mode {padding_mode!r}", f"use one of {', '.join(PADDING_MODES)}")
    binomial_filter(filter_size)  # validate before touching the model

    def wanted(name: str, module: nn.Module) -> bool:
        if replace_convs and type(module) is nn.Conv2d:
            ok = _downsamples(module.stride) and module.in_channels >= min_channels
        elif replace_maxpools and type(module) is nn.MaxPool2d:
            ok = _downsamples(module.stride) and not module.ceil_mode and not module.return_indices
        else:
            return False
        return ok and (predicate is None or bool(predicate(name, module)))

    def build(name: str, module: nn.Module) -> nn.Module:
        if isinstance(module, nn.MaxPool2d):
            return BlurMaxPool2d(module, filter_size=filter_size, padding_mode=padding_mode)
        return BlurConv2d(module, blur_first, filter_size, padding_mode)

    return replace_modules(model, wanted, build, optimizer)


class BlurPool(Algorithm):
    """Anti-alias the model's downsampling layers at INIT (see ``apply_blurpool``)."""

    name = "blurpool"
    touches = frozenset({"model"})
    data_parallel = True
    api_only = frozenset({"predicate"})  # a Python callable or class, not a CLI value
    priority = 50

    def __init__(
        self,
        replace_convs: bool = True,
        replace_maxpools: bool = True,
        blur_first: bool = True,
        min_channels: int = 16,
        filter_size: int = 3,
        padding_mode: str = "reflect",
        *,
        predicate: Predicate | None = None,
    ) -> None:
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {padding_mode!r}")
        if not 1 <= filter_size <= 7:
            raise ValueError(f"filter_size must be between 1 and 7, got {filter_size}")
        self.replace_convs = replace_convs
        self.replace_maxpools = replace_maxpools
        self.blur_first = blur_first
        self.min_channels = min_channels
        self.filter_size = filter_size
        self.padding_mode = padding_mode
        self._predicate = checked_predicate(predicate)

    def match(self, event: Event, state: State) -> bool:
        return event is Event.INIT

    def apply(self, event: Event, state: State) -> None:
        count = apply_blurpool(
            state.model,
            self.replace_convs,
            self.replace_maxpools,
            self.blur_first,
            self.min_channels,
            self.filter_size,
            self.padding_mode,
            self._predicate,
            state.optimizer,
        )
        require_some(
            count,
            self.name,
            f"strided Conv2d (>= {self.min_channels} input channels) or downsampling MaxPool2d",
            "blurpool only helps convolutional nets that downsample; drop it for this model",
        )


CARD = MethodCard(
    name="blurpool",
    summary="Blur before every strided conv and max-pool (anti-aliasing) so features stay stable under shifts.",
    component="model",
    action="replace",
    mechanism="step-count",
    bottleneck=("compute",),
    paper=Paper("Richard Zhang", 2019, "Making Convolutional Networks Shift-Invariant Again", "1904.11486"),
    export="cannot be removed: the trained weights expect the blur. The surgered model uses only standard ops "
    "(a depthwise conv2d and pad), so it is exported as it is.",
    not_worth_it="nets without downsampling, or whose only strided conv is the RGB stem (below min_channels); "
    "very short runs, where the extra depthwise convs cost more than the accuracy gained. "
    "blur_first=False multiplies the replaced convs' work by stride^2.",
    effect="more accuracy per step (better shift invariance) for a few percent more work per step. Pads by "
    "reflection like Zhang's reference code; Composer pads with zeros (padding_mode=zeros reproduces it)",
    applies_to=("image",),
    needs=("downsampling",),
    functional=("apply_blurpool", "blur_2d", "binomial_filter"),
)

register(CARD, BlurPool)
