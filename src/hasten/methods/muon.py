"""Muon: replace the optimizer for hidden-layer matrices with orthogonalized momentum.

The Trainer builds its optimizer from a factory after INIT surgery; this method swaps that
factory at INIT for one that builds ``hasten.optim.muon.Muon`` over the final model: Muon for
2-D weights and conv kernels, and for embeddings, the head, biases and norms the baseline's
own optimizer settings (SGD stays SGD, Adam/AdamW becomes AdamW) unless ``aux`` says otherwise.
It runs before the optimizer wrappers (``sam``, ``lookahead``), which then wrap Muon.
"""

from __future__ import annotations

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.optim.factory import replace_optimizer
from hasten.optim.muon import build_muon

__all__ = ["MuonMethod", "build_muon"]


class MuonMethod(Algorithm):
    """Swap the run's optimizer for Muon (with AdamW/SGD for the non-matrix parameters)."""

    name = "muon"
    touches = frozenset({"optimizer"})
    data_parallel = True
    priority = -50  # replace the optimizer before sam/lookahead wrap it

    def __init__(
        self,
        lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        weight_decay: float = 0.0,
        aux: str = "auto",
        aux_lr: float | None = None,
    ) -> None:
        if lr <= 0 or not 0 <= momentum < 1 or ns_steps < 1 or weight_decay < 0:
            raise ValueError("muon needs lr > 0, 0 <= momentum < 1, ns_steps >= 1 and weight_decay >= 0")
        if aux not in ("auto", "adamw", "sgd"):
            raise ValueError(f"aux must be auto, adamw or sgd, got {aux!r}")
        if aux_lr is not None and aux_lr <= 0:
            raise ValueError(f"aux_lr must be > 0, got {aux_lr}")
        self.lr, self.momentum, self.nesterov, self.ns_steps = lr, momentum, nesterov, ns_steps
        self.weight_decay, self.aux, self.aux_lr = weight_decay, aux, aux_lr

    def match(self, event: Event, state: State) -> bool:
        return event is Event.INIT

    def apply(self, event: Event, state: State) -> None:
        # The one place Muon is chosen; the baseline optimizer is read for its settings only.
        replace_optimizer(
            state,
            lambda model, baseline: build_muon(
                model,
                lr=self.lr,
                momentum=self.momentum,
                nesterov=self.nesterov,
                ns_steps=self.ns_steps,
                weight_decay=self.weight_decay,
                aux=self.aux,
                aux_lr=self.aux_lr,
                baseline=baseline,
            ),
        )


register(
    MethodCard(
        name="muon",
        summary="Orthogonalized (Newton-Schulz) momentum for hidden-layer matrices and conv kernels; "
        "AdamW or SGD for embeddings, head, biases and norms",
        component="optimization",
        action="replace",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper("Jordan et al.", 2024, "Muon: An optimizer for hidden layers in neural networks"),
        functional=(
            "hasten.optim.muon.build_muon",
            "hasten.optim.muon.Muon",
            "hasten.optim.muon.split_params",
            "hasten.optim.muon.newton_schulz",
        ),
        effect="Fewer steps to the same loss: the NanoGPT speedrun's optimization track reports about 3,500 "
        "steps with Muon (plus AdamW) against 5,625 with AdamW alone, and its README claims under 2% "
        "extra wall-clock per step for the Newton-Schulz matmuls on GPUs",
        not_worth_it="Models with few or tiny matrices (the iteration's matmuls then dominate a cheap step); "
        "fine-tuning from AdamW-trained weights; its lr (0.02) is its own and needs tuning, not the "
        "baseline's; heads that are not the last nn.Linear must be excluded by hand. Differs from "
        "KellerJordan/Muon in one place: a conv kernel's update is scaled by sqrt(max(1, out / "
        "(in*kh*kw))), the rule for the matrix Newton-Schulz sees, where the reference takes the "
        "ratio of the kernel's last two dims (kh/kw, so 1 for square kernels); they differ only for "
        "convs with more outputs than in*kh*kw (1x1 expansions). Like the reference, the input "
        "layer (RGB stem, first linear, embedding) and the head go to AdamW/SGD, and same-shape "
        "matrices run one batched iteration, in bf16 where bf16 products are measured faster",
        export="unchanged: only the optimizer differs",
        applies_to=("any",),
    ),
    MuonMethod,
)
