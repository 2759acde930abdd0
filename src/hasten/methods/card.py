"""Method cards: the taxonomy (DESIGN.md section 2) and what a user must know before using a method."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from hasten.bottlenecks import BOTTLENECKS

COMPONENTS = ("data", "model", "optimization", "evaluation")
ACTIONS = ("remove", "restrict", "reorder", "replace", "augment")
MECHANISMS = ("step-cost", "step-count", "both", "memory")
# What a method needs to find in a model to act at all (the profiler looks for it before
# recommending the method): 2-D convolutions, strided convolutions or max-pools, normalization
# layers, plain two-layer MLP blocks, residual connections.
MODEL_FEATURES = ("conv2d", "downsampling", "norm", "mlp", "residual")


@dataclass(frozen=True)
class Paper:
    authors: str
    year: int
    title: str
    arxiv: str | None = None

    def __str__(self) -> str:
        ref = f", arXiv:{self.arxiv}" if self.arxiv else ""
        return f'{self.authors} ({self.year}), "{self.title}"{ref}'


@dataclass(frozen=True)
class MethodCard:
    """Everything about a method except its code. ``touches``, ``conflicts`` and
    ``resume`` (and ``data_parallel``, ``data_parallel_note``) are read from the Algorithm class at
    registration, so they are stated once.

    - ``when``: ``"whole run"`` or a window of the run such as ``"0.0-0.5dur"``.
    - ``export``: how to get a plain model back (``"unchanged"`` if nothing to undo).
    - ``not_worth_it``: where the method is known not to pay off.
    - ``effect``: the expected effect on the bottleneck, quoted by the profiler.
    - ``applies_to``: workload modalities it fits (``image``, ``text``, ``any``).
    - ``implementation_level``: a switch (layout, precision, compilation), not an algorithm.
    - ``needs``: model features (``MODEL_FEATURES``) the method acts on; without them it does nothing.
    """

    name: str
    summary: str
    component: str
    action: str
    mechanism: str
    bottleneck: tuple[str, ...]
    paper: Paper | None = None
    when: str = "whole run"
    export: str = "unchanged"
    not_worth_it: str = ""
    effect: str = ""
    applies_to: tuple[str, ...] = ("any",)
    implementation_level: bool = False
    needs: tuple[str, ...] = ()
    functional: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    touches: tuple[str, ...] = ()
    conflicts: dict[str, str] = field(default_factory=dict)
    resume: bool = True
    resume_note: str = ""
    data_parallel: bool | None = None
    data_parallel_note: str = ""

    def __post_init__(self) -> None:
        problems = []
        if self.component not in COMPONENTS:
            problems.append(f"component {self.component!r} not in {COMPONENTS}")
        if self.action not in ACTIONS:
            problems.append(f"action {self.action!r} not in {ACTIONS}")
        if self.mechanism not in MECHANISMS:
            problems.append(f"mechanism {self.mechanism!r} not in {MECHANISMS}")
        bad = [b for b in self.bottleneck if b not in BOTTLENECKS]
        if bad:
            problems.append(f"bottleneck {bad} not in {BOTTLENECKS}")
        unknown = [n for n in self.needs if n not in MODEL_FEATURES]
        if unknown:
            problems.append(f"needs {unknown} not in {MODEL_FEATURES}")
        if not self.summary:
            problems.append("summary is empty")
        if problems:
            raise ValueError(f"card {self.name!r}: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["paper"] = asdict(self.paper) if self.paper else None
        data["bottleneck"] = list(self.bottleneck)
        data["touches"] = list(self.touches)
        data["applies_to"] = list(self.applies_to)
        data["needs"] = list(self.needs)
        data["functional"] = list(self.functional)
        return data
