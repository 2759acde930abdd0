"""Recommendations: catalogue methods whose cards say they relieve the bottleneck found.

Read from the method cards (``bottleneck`` and ``effect``), never from a list kept here, so a
method added to the catalogue is recommended as soon as it is registered. Ranking, best first:

1. methods whose card lists this bottleneck *first* (their main effect) before those that list
   it among others;
2. implementation-level switches (layout, precision, compilation) before algorithms: they do
   not change what the model learns;
3. by mechanism: cheaper steps (``step-cost``) before ``both``, then fewer steps
   (``step-count``), then memory savers: a throughput bottleneck is relieved by cheaper steps;
4. by name, so the order is stable.

For a compute verdict on a device whose measured bf16 matmul rate is no better than fp32
(most CPUs), methods that speed compute up through bf16 go last, with that measurement as why.

Methods already in the profiled recipe are left out, and so is every method that cannot act
on this loop (``applicability.why_not``: the wrong modality, a model without what the method
needs, a switch already on); ``recommend_for_loop`` says why each was left out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

from hasten.profile.applicability import LoopFacts, why_not
from hasten.profile.verdict import explain

MECHANISM_ORDER = ("step-cost", "both", "step-count", "memory")

# Advice that is not a catalogue method: the first things to try, in plain words.
ADVICE = {
    "data": [
        "load in parallel: DataLoader(num_workers=N, pin_memory=True, persistent_workers=True)",
        "decode once and keep decoded data in memory (or a pre-processed format) instead of per step",
        "augment whole batches on the device instead of each sample on the CPU",
    ],
    "host": [
        "fewer, bigger operations: a larger batch, or torch.compile to fuse small kernels",
        "avoid per-step host syncs such as .item() or printing tensors inside the step",
        "use fused or foreach optimizer implementations",
    ],
    "memory": [
        "fuse chains of elementwise operations (torch.compile) and prefer fused built-ins (F.gelu, F.layer_norm)",
        "move fewer bytes: bf16 autocast, channels_last for convolutions",
    ],
    "compute": [
        "bf16 autocast on hardware with fast bf16 matrix units",
        "fewer FLOPs: smaller inputs early in training (progressive resizing), fewer layers or tokens",
    ],
    "communication": [
        "a larger per-device batch or gradient accumulation: fewer all-reduces per sample",
        "overlap communication with backward (DDP buckets, FSDP prefetch)",
    ],
}


@dataclass(frozen=True)
class Recommendation:
    method: str
    bottleneck: str
    why: str
    effect: str
    summary: str
    main_effect: bool
    card: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LeftOut:
    """A method whose card lists the bottleneck but that cannot help this loop, and why."""

    method: str
    bottleneck: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rank(card: Any, bottleneck: str) -> tuple:
    mechanism = MECHANISM_ORDER.index(card.mechanism) if card.mechanism in MECHANISM_ORDER else len(MECHANISM_ORDER)
    return (card.bottleneck.index(bottleneck) > 0, not card.implementation_level, mechanism, card.name)


def _fits(card: Any, modality: str | None) -> bool:
    applies = tuple(card.applies_to or ("any",))
    return modality is None or "any" in applies or modality in applies


def candidates(
    bottleneck: str, *, modality: str | None = None, exclude: Iterable[str] = (), methods: Sequence[Any] | None = None
) -> list[Any]:
    """Catalogue entries whose card lists ``bottleneck``, ranked best first."""
    if methods is None:
        from hasten.methods.registry import all_methods

        methods = all_methods()
    excluded = set(exclude)
    chosen = [
        m
        for m in methods
        if bottleneck in m.card.bottleneck and m.card.name not in excluded and _fits(m.card, modality)
    ]
    return sorted(chosen, key=lambda m: _rank(m.card, bottleneck))


def needs_fast_bf16(card: Any) -> bool:
    """A card whose speed-up comes from bf16 arithmetic (it says so in its summary or effect)."""
    text = f"{card.summary} {card.effect}".lower()
    return "bf16" in text or "bfloat16" in text


def recommend(
    verdict: str,
    evidence: dict[str, Any],
    *,
    secondary: str | None = None,
    modality: str | None = None,
    exclude: Iterable[str] = (),
    methods: Sequence[Any] | None = None,
    bf16_speedup: float | None = None,
    facts: LoopFacts | None = None,
) -> list[Recommendation]:
    """Methods for the verdict, then for the secondary bottleneck, each with why and effect."""
    return recommend_for_loop(
        verdict,
        evidence,
        secondary=secondary,
        modality=modality,
        exclude=exclude,
        methods=methods,
        bf16_speedup=bf16_speedup,
        facts=facts,
    )[0]


def recommend_for_loop(
    verdict: str,
    evidence: dict[str, Any],
    *,
    secondary: str | None = None,
    modality: str | None = None,
    exclude: Iterable[str] = (),
    methods: Sequence[Any] | None = None,
    bf16_speedup: float | None = None,
    facts: LoopFacts | None = None,
) -> tuple[list[Recommendation], list[LeftOut]]:
    """Recommendations for the verdict and the secondary bottleneck, and the methods left out
    because they cannot act on this loop (``facts``; without them only ``modality`` is known).

    ``bf16_speedup`` (measured bf16 / fp32 matmul rate): below 1.2, methods that make compute
    cheaper through bf16 go last for a compute verdict, with the measured reason.
    """
    facts = facts if facts is not None else LoopFacts(modality=modality)
    out: list[Recommendation] = []
    left_out: list[LeftOut] = []
    seen: set[str] = set(exclude)
    for bottleneck in [verdict] + ([secondary] if secondary else []):
        reason = explain(bottleneck, evidence)
        ranked: list = []
        demoted: list = []
        for entry in candidates(bottleneck, exclude=seen, methods=methods):
            card = entry.card
            seen.add(card.name)
            unfit = why_not(card, facts)
            if unfit is not None:
                left_out.append(LeftOut(card.name, bottleneck, unfit))
                continue
            why = f"{bottleneck}-bound: {reason}" if bottleneck == verdict else f"secondary ({bottleneck}): {reason}"
            slow_bf16 = bottleneck == "compute" and bf16_speedup is not None and bf16_speedup < 1.2
            if slow_bf16 and needs_fast_bf16(card):
                why += (
                    f"; but this device's measured bf16 matmul rate is {bf16_speedup:.2f}x its fp32 rate, "
                    "so expect little or no speed-up here"
                )
            rec = Recommendation(
                method=card.name,
                bottleneck=bottleneck,
                why=why,
                effect=card.effect or card.summary,
                summary=card.summary,
                main_effect=card.bottleneck[0] == bottleneck,
                card=f"hasten methods {card.name}",
            )
            (demoted if slow_bf16 and needs_fast_bf16(card) else ranked).append(rec)
        out += ranked + demoted
    return out, left_out
