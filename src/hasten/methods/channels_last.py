"""Channels-last: store 4-D weights and image batches as NHWC so convolutions skip layout transposes.

The maths is unchanged; only the memory layout differs. On GPUs with tensor cores,
cuDNN's fast convolution kernels want NHWC, and NCHW tensors are transposed around
every convolution. ``apply_channels_last`` converts the model's 4-D parameters and
buffers; the Algorithm also converts every 4-D training and evaluation input.
"""

from __future__ import annotations

import torch
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register


def apply_channels_last(model: nn.Module) -> nn.Module:
    """Convert 4-D parameters and buffers to ``torch.channels_last`` in place; returns ``model``.
    Parameter objects are kept, so an existing optimizer still holds them."""
    return model.to(memory_format=torch.channels_last)


def remove_channels_last(model: nn.Module) -> nn.Module:
    """Back to the default contiguous (NCHW) layout, for export; values are unchanged."""
    return model.to(memory_format=torch.contiguous_format)


def to_channels_last(inputs: torch.Tensor) -> torch.Tensor:
    """4-D tensors in channels-last layout; anything else is returned unchanged."""
    if isinstance(inputs, torch.Tensor) and inputs.ndim == 4:
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs


class ChannelsLast(Algorithm):
    """Model to NHWC at INIT; every 4-D input to NHWC just before the forward pass.

    Runs late (priority 80): after the other INIT surgery, so the modules they add are
    converted too, and after batch transforms at BEFORE_FORWARD, whose outputs it converts.
    """

    name = "channels_last"
    touches = frozenset({"model", "batch", "eval"})
    data_parallel = True
    priority = 80

    def match(self, event: Event, state: State) -> bool:
        return event in (Event.INIT, Event.BEFORE_FORWARD, Event.EVAL_BATCH_START)

    def apply(self, event: Event, state: State) -> None:
        if event is Event.INIT:
            apply_channels_last(state.model)
        elif event is Event.BEFORE_FORWARD:
            state.inputs = to_channels_last(state.inputs)
        else:
            inputs, *rest = state.eval_batch
            state.eval_batch = (to_channels_last(inputs), *rest)


CARD = MethodCard(
    name="channels_last",
    summary="Keep 4-D weights and image batches in NHWC layout so convolutions run without transposes.",
    component="model",
    action="replace",
    mechanism="step-cost",
    bottleneck=("memory", "compute"),
    paper=Paper("Vitaly Fedyunin (PyTorch)", 2020, "Channels Last Memory Format in PyTorch (tutorial)"),
    export="exact: remove_channels_last(model) restores NCHW; the weights' values never change",
    not_worth_it="models without 4-D convolutions (nothing to convert); fp32 on GPUs without tensor cores; "
    "models whose custom ops lack NHWC kernels, which convert back and forth and can end up slower.",
    effect="fewer layout transposes around convolutions: less memory traffic per step, same number of steps",
    applies_to=("image",),
    needs=("conv2d",),
    implementation_level=True,
    functional=("apply_channels_last", "to_channels_last", "remove_channels_last"),
)

register(CARD, ChannelsLast)
