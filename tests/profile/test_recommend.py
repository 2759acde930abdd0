from __future__ import annotations

from hasten.core.algorithm import Algorithm
from hasten.methods.card import MethodCard
from hasten.methods.registry import MethodEntry, all_methods
from hasten.profile.recommend import candidates, recommend
from hasten.profile.verdict import PRIORITY

EVIDENCE = {
    "shares": dict.fromkeys(PRIORITY, 0.1) | {"compute": 0.6},
    "step_time_s": 0.05,
    "ops_per_step": 40,
    "mean_op_time_s": 1e-3,
    "ridge_point": 10.0,
    "mfu": 0.4,
    "matmul_dtype": "float32",
    "device_idle_fraction": None,
}


def entry(name, bottleneck, mechanism="step-cost", implementation=False, applies=("any",), summary="s", effect="e"):
    card = MethodCard(
        name=name,
        summary=summary,
        component="model",
        action="replace",
        mechanism=mechanism,
        bottleneck=bottleneck,
        implementation_level=implementation,
        applies_to=applies,
        effect=effect,
    )
    return MethodEntry(card, Algorithm)


FAKE = [
    entry("fewer_steps", ("compute",), mechanism="step-count"),
    entry("secondary_relief", ("memory", "compute")),
    entry("switch", ("compute",), implementation=True),
    entry("cheaper_steps", ("compute",)),
    entry("image_only", ("compute",), applies=("image",)),
    entry("data_method", ("data",)),
]


def test_ranking_main_effect_then_switches_then_mechanism():
    ranked = [e.name for e in candidates("compute", methods=FAKE)]
    assert ranked == ["switch", "cheaper_steps", "image_only", "fewer_steps", "secondary_relief"]


def test_modality_and_exclusions_filter():
    ranked = [e.name for e in candidates("compute", modality="text", exclude=["switch"], methods=FAKE)]
    assert ranked == ["cheaper_steps", "fewer_steps", "secondary_relief"]


def test_recommendations_carry_why_effect_and_card():
    recs = recommend("compute", EVIDENCE, methods=FAKE)
    first = recs[0]
    assert first.method == "switch" and first.bottleneck == "compute" and first.main_effect
    assert "compute-bound" in first.why and "60%" in first.why
    assert first.effect == "e" and first.card == "hasten methods switch"
    assert not next(r for r in recs if r.method == "secondary_relief").main_effect


def test_secondary_bottleneck_methods_follow_without_repeats():
    methods = FAKE + [entry("memory_only", ("memory",))]
    evidence = EVIDENCE | {"shares": EVIDENCE["shares"] | {"memory": 0.3}}
    recs = recommend("compute", evidence, secondary="memory", methods=methods)
    names = [r.method for r in recs]
    assert names[-1] == "memory_only" and recs[-1].bottleneck == "memory"
    assert recs[-1].why.startswith("secondary (memory)")
    assert len(names) == len(set(names))  # secondary_relief, listed for both, comes once
    assert [r.bottleneck for r in recs[:-1]] == ["compute"] * (len(recs) - 1)


def test_bf16_methods_go_last_where_bf16_is_slow():
    methods = FAKE + [entry("precision", ("compute",), implementation=True, summary="bf16 autocast")]
    fast = [r.method for r in recommend("compute", EVIDENCE, methods=methods, bf16_speedup=3.0)]
    slow = recommend("compute", EVIDENCE, methods=methods, bf16_speedup=0.05)
    assert fast[0] == "precision"
    assert slow[-1].method == "precision" and "0.05x" in slow[-1].why


def test_the_real_catalogue_each_verdict_gets_exactly_its_methods():
    catalogue = all_methods()
    for bottleneck in PRIORITY:
        evidence = EVIDENCE | {"shares": dict.fromkeys(PRIORITY, 0.1) | {bottleneck: 0.6}}
        recs = recommend(bottleneck, evidence)
        assert {r.method for r in recs} == {m.name for m in catalogue if bottleneck in m.card.bottleneck}
        assert all(bottleneck in next(m for m in catalogue if m.name == r.method).card.bottleneck for r in recs)


def test_methods_that_cannot_act_on_the_loop_are_left_out_with_the_reason():
    import pytest

    from hasten.profile.applicability import LoopFacts
    from hasten.profile.recommend import recommend_for_loop

    needy = MethodCard(
        name="needs_norm",
        summary="s",
        component="model",
        action="replace",
        mechanism="step-cost",
        bottleneck=("compute",),
        needs=("norm",),
    )
    methods = [*FAKE, MethodEntry(needy, Algorithm)]
    facts = LoopFacts(modality="text", features=frozenset({"mlp"}), in_use={"switch": "seen on"})
    recs, left = recommend_for_loop("compute", EVIDENCE, methods=methods, facts=facts)
    assert [r.method for r in recs] == ["cheaper_steps", "fewer_steps", "secondary_relief"]
    assert {x.method: x.why for x in left} == {
        "switch": "already on: seen on",
        "image_only": "for image models; this one is text",
        "needs_norm": "the model has no LayerNorm, GroupNorm or RMSNorm layers for it to act on",
    }
    with pytest.raises(ValueError, match="needs"):
        MethodCard(
            name="bad",
            summary="s",
            component="model",
            action="replace",
            mechanism="step-cost",
            bottleneck=("compute",),
            needs=("wheels",),
        )
