"""Data echoing (Choi et al. 2019): when loading is the bottleneck, train on each loaded batch several times.

Batch echoing, in the paper's terms: each batch the upstream pipeline produces is used for
``echo_factor`` consecutive optimizer steps, so a run of S steps reads only ``S / echo_factor``
fresh batches. Steps stay the same shape, and an epoch still has the same number of steps
(it now reads ``1 / echo_factor`` of the data fresh). Augmentations done by hasten methods run
after echoing and so differ between repeats; augmentations inside the batch source are repeated.
It pays only while the loader is slower than the step: the paper's bound on useful echoing is
the ratio of upstream to downstream time (``suggested_echo_factor``).

Exact resume: which upstream batch feeds a step is a function of the step alone, and the one
batch being echoed is saved in checkpoints, so a run resumed mid-echo neither reloads it nor
replays the loader's random draws.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator

import torch

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.methods.alternating_flip import num_samples, sample_indices
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.trainer.sources import move_to


def echo_batches(batches: Iterable[Any], echo_factor: int = 2) -> Iterator[Any]:
    """Yield every batch ``echo_factor`` times in a row (for a plain PyTorch loop)."""
    for batch in batches:
        for _ in range(echo_factor):
            yield batch


def suggested_echo_factor(upstream_seconds: float, downstream_seconds: float) -> int:
    """The paper's useful limit: echoing beyond upstream/downstream time saves no more time."""
    if downstream_seconds <= 0:
        return 1
    return max(1, math.floor(upstream_seconds / downstream_seconds))


class EchoingSource:
    """A batch source that repeats each upstream batch ``echo_factor`` times, same length per epoch.

    Step ``index`` of ``epoch`` uses upstream batch ``u = (epoch * len + index) // echo_factor``,
    i.e. batch ``u % len`` of upstream epoch ``u // len``. The batch being echoed is kept (on
    ``device``) so repeats cost no loading and no host-to-device copy.
    """

    def __init__(self, inner: Any, echo_factor: int, device: torch.device | None = None) -> None:
        self.inner = inner
        self.echo_factor = echo_factor
        self.device = device
        self.cached: tuple[int, Any] | None = None  # (upstream position, batch)
        self._feed: Iterator[Any] | None = None  # the upstream iterator, kept across epochs so a
        self._feed_next = -1  # DataLoader is never restarted mid-epoch; position it yields next

    def __len__(self) -> int:
        return len(self.inner)

    @property
    def batch_size(self) -> Any:
        return getattr(self.inner, "batch_size", None)

    @property
    def tokens_per_batch(self) -> Any:
        return getattr(self.inner, "tokens_per_batch", None)

    @property
    def tokens_in(self) -> Any:
        return getattr(self.inner, "tokens_in", None)

    @property
    def num_samples(self) -> int | None:
        return num_samples(self.inner)

    def upstream(self, epoch: int, index: int) -> tuple[int, int]:
        """(upstream epoch, upstream batch index) feeding step ``index`` of ``epoch``."""
        return divmod(self._position(epoch, index), len(self))

    def _position(self, epoch: int, index: int) -> int:
        return (epoch * len(self) + index) // self.echo_factor

    def sample_indices(self, epoch: int, index: int) -> torch.Tensor | None:
        return sample_indices(self.inner, *self.upstream(epoch, index))

    def batches(self, epoch: int, start: int = 0) -> Iterator[Any]:
        for index in range(start, len(self)):
            position = self._position(epoch, index)
            if self.cached is None or self.cached[0] != position:
                batch = self._load(position)
                if batch is None:  # the upstream epoch ran short
                    return
                self.cached = (position, move_to(batch, self.device) if self.device is not None else batch)
            yield self.cached[1]

    def _load(self, position: int) -> Any:
        up_epoch, up_index = divmod(position, len(self))
        if self._feed is None or self._feed_next != position:
            self._feed = iter(self.inner.batches(up_epoch, up_index))
        batch = next(self._feed, None)
        self._feed_next = position + 1 if up_index + 1 < len(self) else -1
        return batch


class DataEchoing(Algorithm):
    """Wraps the training source at INIT; saves the echoed batch in checkpoints."""

    name = "data_echoing"
    touches = frozenset({"data"})
    data_parallel = True

    def __init__(self, echo_factor: int = 2) -> None:
        if echo_factor < 1:
            raise ValueError(f"echo_factor must be >= 1, got {echo_factor}")
        self.echo_factor = echo_factor
        self._source: EchoingSource | None = None

    def match(self, event: Event, state: State) -> bool:
        return event is Event.INIT

    def apply(self, event: Event, state: State) -> None:
        if not isinstance(state.train_data, EchoingSource):
            state.train_data = EchoingSource(state.train_data, self.echo_factor, state.device)
        self._source = state.train_data
        state.extra[self.name] = {"echo_factor": self.echo_factor}

    def state_dict(self) -> dict[str, Any]:
        if self._source is None or self._source.cached is None:
            return {}
        position, batch = self._source.cached
        saved = list(batch) if isinstance(batch, (tuple, list)) else batch
        return {"position": position, "batch": move_to(saved, torch.device("cpu"))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self._source is None or "position" not in state:
            return
        batch = state["batch"]
        if self._source.device is not None:
            batch = move_to(batch, self._source.device)
        self._source.cached = (int(state["position"]), tuple(batch) if isinstance(batch, list) else batch)


register(
    MethodCard(
        name="data_echoing",
        summary="Reuse each loaded batch for several steps when the input pipeline is the bottleneck",
        component="data",
        action="remove",
        mechanism="step-cost",
        bottleneck=("data", "host"),
        paper=Paper(
            "Dami Choi, Alexandre Passos, Christopher J. Shallue, George E. Dahl",
            2019,
            "Faster Neural Network Training with Data Echoing",
            "1907.05550",
        ),
        not_worth_it=(
            "runs that are not data-bound (no loading time to save, and an echoed step is worth less than a "
            "fresh one, so more steps are needed); echo factors above upstream/downstream time "
            "(suggested_echo_factor); in-memory data sets, which load in microseconds"
        ),
        effect="fresh batches read per step fall to 1/echo_factor; loader wait per step falls by up to that much",
        applies_to=("any",),
        functional=("echo_batches", "suggested_echo_factor", "EchoingSource"),
    ),
    DataEchoing,
)
