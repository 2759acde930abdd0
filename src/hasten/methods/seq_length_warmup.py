"""Sequence length warmup (Li, Zhang and He 2021): train language models on short sequences first.

The paper's schedule is linear: the length grows from ``min_seq_length`` to ``max_seq_length``
over the first ``duration`` of the run, in multiples of ``step_size`` (8 suits tensor cores), and
is ``max_seq_length`` from the end of the warm-up on (the last increment is shorter than
``step_size`` when ``max - min`` is not a multiple of it; Composer's schedule, in whole steps,
then reaches the full length only some steps after its warm-up). Short sequences make early steps cheaper and, the paper
shows, more stable, which allows larger batches and learning rates. ``truncate=True`` drops
each sequence's tail; ``truncate=False`` cuts every sequence into more, shorter examples so no
token is wasted. It reads ``state.progress`` only, so it resumes exactly.
"""

from __future__ import annotations

import math

import torch

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register


def seq_length_schedule(
    progress: float, duration: float = 0.3, min_seq_length: int = 8, max_seq_length: int = 1024, step_size: int = 8
) -> int:
    """The sequence length at ``progress`` (fraction of the run done): linear from ``min_seq_length``
    to ``max_seq_length`` over the first ``duration``, floored to whole ``step_size`` increments.

    Once the warm-up is over the length is ``max_seq_length`` itself, even when ``max - min`` is not
    a multiple of ``step_size`` (flooring alone would stop one partial step short, for good).
    """
    done = 1.0 if duration <= 0 else min(progress / duration, 1.0)
    if done >= 1.0 - 1e-9:
        return max_seq_length
    increments = math.floor((max_seq_length - min_seq_length) * done / step_size + 1e-9)
    return min(min_seq_length + increments * step_size, max_seq_length)


def set_batch_sequence_length(
    inputs: torch.Tensor, targets: torch.Tensor, seq_length: int, truncate: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shorten a batch of sequences (N, T) (targets aligned, e.g. next tokens) to ``seq_length``.

    ``truncate=True`` keeps the first ``seq_length`` positions; ``False`` cuts each row into
    ``T // seq_length`` rows, dropping a remainder shorter than ``seq_length``. A no-op if the
    batch is already that short.
    """
    if inputs.ndim < 2 or targets.shape[:2] != inputs.shape[:2]:
        raise ConfigError(
            f"sequence length warmup needs (N, T) inputs with targets aligned per position; got inputs "
            f"{tuple(inputs.shape)} and targets {tuple(targets.shape)}",
            "use it on language-model batches (inputs and next-token targets)",
        )
    length = inputs.shape[1]
    if seq_length >= length:
        return inputs, targets
    if truncate:
        return inputs[:, :seq_length].contiguous(), targets[:, :seq_length].contiguous()
    usable = (length // seq_length) * seq_length

    def segment(t: torch.Tensor) -> torch.Tensor:
        return t[:, :usable].reshape(-1, seq_length, *t.shape[2:])

    return segment(inputs), segment(targets)


class SeqLengthWarmup(Algorithm):
    """Shortens each batch at BATCH_START. ``max_seq_length=None`` means the data's own length."""

    name = "seq_length_warmup"
    touches = frozenset({"batch"})
    data_parallel = True
    removes = frozenset({"fixed_input_shape"})
    priority = -10

    def __init__(
        self,
        duration: float = 0.3,
        min_seq_length: int = 8,
        max_seq_length: int | None = None,
        step_size: int = 8,
        truncate: bool = True,
    ) -> None:
        if not 0.0 <= duration <= 1.0:
            raise ValueError(f"duration must be in [0, 1], got {duration}")
        if min_seq_length < 1 or step_size < 1:
            raise ValueError("min_seq_length and step_size must be >= 1")
        if max_seq_length is not None and max_seq_length < min_seq_length:
            raise ValueError(f"max_seq_length={max_seq_length} is below min_seq_length={min_seq_length}")
        self.duration = duration
        self.min_seq_length = min_seq_length
        self.max_seq_length = max_seq_length
        self.step_size = step_size
        self.truncate = truncate

    def length_at(self, progress: float, data_length: int) -> int:
        longest = self.max_seq_length or data_length
        return seq_length_schedule(progress, self.duration, min(self.min_seq_length, longest), longest, self.step_size)

    def match(self, event: Event, state: State) -> bool:
        return event is Event.BATCH_START

    def apply(self, event: Event, state: State) -> None:
        length = self.length_at(state.progress, state.inputs.shape[1])
        state.batch = set_batch_sequence_length(state.inputs, state.targets, length, self.truncate)
        state.extra[self.name] = {"seq_length": int(state.inputs.shape[1])}


register(
    MethodCard(
        name="seq_length_warmup",
        summary="Grow the training sequence length linearly over the first 30% of the run",
        component="data",
        action="restrict",
        mechanism="both",
        bottleneck=("compute", "memory"),
        when="0.0-0.3dur",
        paper=Paper(
            "Conglong Li, Minjia Zhang, Yuxiong He",
            2021,
            "The Stability-Efficiency Dilemma: Investigating Sequence Length Warmup for Training GPT Models",
            "2108.06084",
        ),
        not_worth_it=(
            "short contexts (little to shorten; Composer's ALiBi notes warn below 128-256 tokens); models with "
            "learned absolute positions never trained at the far positions until late; truncate=True discards "
            "the tails, so on a token budget more data is read for the same learning"
        ),
        effect="early steps cost about length/max_length of a full step; the paper also reports more stable "
        "training at large batch and learning rate (about 1.5x to the same loss in Composer's GPT-2 runs)",
        applies_to=("text",),
        functional=("set_batch_sequence_length", "seq_length_schedule"),
    ),
    SeqLengthWarmup,
)
