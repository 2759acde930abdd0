"""The profiler recommends only what can act on the profiled model and is not already on."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hasten.methods.registry import all_methods
from hasten.profile import Profiler
from hasten.profile.applicability import (
    LoopFacts,
    infer_modality,
    inspect_loop,
    model_features,
    switches_in_use,
    why_not,
)

CARDS = {m.name: m.card for m in all_methods()}


class SmallCNN(nn.Module):
    """Plain conv net: strided convs and BatchNorm, no residuals, no LayerNorm, no MLP block."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, 2, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        mask = torch.triu(torch.ones(x.shape[1], x.shape[1], dtype=torch.bool, device=x.device), 1)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab: int = 32, width: int = 32, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.blocks = nn.Sequential(*[Block(width) for _ in range(layers)])
        self.ln = nn.LayerNorm(width)
        self.out = nn.Linear(width, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.out(self.ln(self.blocks(self.embed(idx))))


def images(n: int = 4):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(n)]


def tokens(n: int = 4):
    g = torch.Generator().manual_seed(0)
    return [(torch.randint(0, 32, (4, 16), generator=g), torch.randint(0, 32, (4, 16), generator=g)) for _ in range(n)]


def profile(model, batches, loss, *, autocast=False, **kwargs):
    torch.set_num_threads(1)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    prof = Profiler("cpu", skip=1, steps=2, record=1, min_time=0, model=model, **kwargs)
    for x, y in prof.wrap(batches * 3):
        with prof.step():
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                out = model(x)
            loss(out.float(), y).backward()
            opt.step()
    return prof.report()


def gpt_loss(out, y):
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


# --------------------------------------------------------------------- features
def test_features_of_a_cnn_and_a_gpt():
    cnn_found, cnn_unchecked = model_features(SmallCNN(), images(1)[0][0])
    assert cnn_found == {"conv2d", "downsampling"} and not cnn_unchecked  # BatchNorm is no target of norm methods
    gpt_found, _ = model_features(TinyGPT(), tokens(1)[0][0])
    assert gpt_found == {"norm", "mlp", "residual"}
    _, unchecked = model_features(TinyGPT())
    assert unchecked == {"residual"}  # no example input: the residual probe cannot run


def test_modality_is_read_from_the_input_or_the_model():
    assert infer_modality(None, tokens(1)[0][0]) == "text"
    assert infer_modality(None, images(1)[0][0]) == "image"
    assert infer_modality(TinyGPT()) == "text" and infer_modality(SmallCNN()) == "image"
    assert infer_modality(nn.Linear(4, 4)) is None


def test_switches_already_on_are_seen():
    cnn = SmallCNN()
    assert switches_in_use(cnn) == {}
    assert "channels_last" in switches_in_use(cnn.to(memory_format=torch.channels_last))
    gpt = TinyGPT()
    gpt.compile()  # marks the module; nothing is compiled until it is called
    assert "compile" in switches_in_use(gpt)


@pytest.mark.parametrize(
    "method, model, fragment",
    [
        ("low_precision_norm", SmallCNN, "no LayerNorm, GroupNorm or RMSNorm"),
        ("gated_linear_units", SmallCNN, "no two-layer MLP blocks"),
        ("stochastic_depth", SmallCNN, "no residual connections"),
        ("seq_length_warmup", SmallCNN, "for text models; this one is image"),
        ("blurpool", TinyGPT, "for image models; this one is text"),
        ("channels_last", TinyGPT, "for image models"),
    ],
)
def test_methods_that_cannot_act_on_the_model_say_why(method, model, fragment):
    instance = model()
    example = (images if model is SmallCNN else tokens)(1)[0][0]
    reason = why_not(CARDS[method], inspect_loop(instance, example_input=example))
    assert reason is not None and fragment in reason


def test_a_surgery_that_finds_its_target_is_kept():
    facts = inspect_loop(TinyGPT(), example_input=tokens(1)[0][0])
    for method in ("low_precision_norm", "gated_linear_units", "stochastic_depth", "label_smoothing", "compile"):
        assert why_not(CARDS[method], facts) is None, method
    cnn = inspect_loop(SmallCNN(), example_input=images(1)[0][0])
    for method in ("blurpool", "channels_last", "squeeze_excite", "mixup"):
        assert why_not(CARDS[method], cnn) is None, method
    assert why_not(CARDS["low_precision_norm"], LoopFacts()) is None  # nothing known: nothing ruled out


# -------------------------------------------------------------- the whole profile
def _split_is_complete(report, model, example):
    """Every catalogue method for the verdict (and secondary) is either recommended and applies,
    or left out with the reason ``why_not`` gives: whatever verdict the machine's load leads to."""
    facts = inspect_loop(model, example_input=example)
    wanted = {report.verdict} | ({report.secondary} if report.secondary else set())
    listed = {n for n, c in CARDS.items() if wanted & set(c.bottleneck)}
    recommended = {r.method for r in report.recommendations}
    left = {x.method: x.why for x in report.left_out}
    assert recommended | set(left) == listed and not recommended & set(left)
    for name in listed:
        assert (why_not(CARDS[name], facts) is None) == (name in recommended), name


def test_profiling_a_cnn_recommends_only_what_applies():
    model = SmallCNN()
    report = profile(model, images(), F.cross_entropy)
    mine = {r.method for r in report.recommendations}
    assert not mine & {"low_precision_norm", "gated_linear_units", "stochastic_depth", "seq_length_warmup"}
    _split_is_complete(report, model, images(1)[0][0])
    assert ("left out, as they cannot help this loop" in report.render()) == bool(report.left_out)


def test_a_memory_verdict_on_a_cnn_leaves_out_norm_and_text_methods():
    from hasten.profile.recommend import recommend_for_loop

    evidence = {
        "shares": {"data": 0.0, "host": 0.1, "memory": 0.8, "compute": 0.1, "communication": 0.0},
        "step_time_s": 0.05,
        "memory_time_s": 0.04,
        "bytes_per_step": 1e9,
        "arithmetic_intensity": 1.0,
        "ridge_point": 10.0,
    }
    facts = inspect_loop(SmallCNN(), example_input=images(1)[0][0])
    recs, left = recommend_for_loop("memory", evidence, facts=facts)
    assert "channels_last" in {r.method for r in recs}
    assert {x.method for x in left} >= {"low_precision_norm"}
    assert all(x.why for x in left)


def test_profiling_a_gpt_in_bf16_does_not_recommend_bf16_or_image_methods():
    model = TinyGPT()
    report = profile(model, tokens(), gpt_loss, autocast=True)
    mine = {r.method for r in report.recommendations}
    assert "precision" not in mine
    assert not mine & {n for n, c in CARDS.items() if c.applies_to == ("image",)}
    left = {x.method: x.why for x in report.left_out}
    if "precision" in left:  # listed only when the verdict's cards include it
        assert left["precision"].startswith("already on")
    facts = inspect_loop(model, example_input=tokens(1)[0][0], census=None)
    assert "precision" not in facts.in_use  # seen from the step's operations, not from the model


def test_bf16_matmuls_in_the_census_mark_precision_as_on():
    from hasten.profile.census import CensusRecorder

    model = TinyGPT()
    x, y = tokens(1)[0]
    with CensusRecorder() as recorder:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
        gpt_loss(out.float(), y).backward()
    assert "precision" in switches_in_use(model, recorder.result)
    reason = why_not(CARDS["precision"], inspect_loop(model, census=recorder.result))
    assert reason is not None and reason.startswith("already on: ")
    with CensusRecorder() as plain:
        gpt_loss(model(x), y).backward()
    assert "precision" not in switches_in_use(model, plain.result)
