"""One bottleneck vocabulary for the cards, the evidence and the verdict."""

import hasten.profile
from hasten.bottlenecks import BOTTLENECKS, PRIORITY
from hasten.methods import all_methods
from hasten.methods import card as card_module
from hasten.profile import evidence, verdict


def test_cards_evidence_and_verdict_share_one_vocabulary():
    assert set(PRIORITY) == set(BOTTLENECKS) and len(PRIORITY) == len(BOTTLENECKS)
    assert card_module.BOTTLENECKS is BOTTLENECKS
    assert evidence.BOTTLENECKS is PRIORITY and hasten.profile.BOTTLENECKS is PRIORITY
    assert verdict.PRIORITY is PRIORITY and set(verdict.WATCH) == set(BOTTLENECKS)
    assert {b for entry in all_methods() for b in entry.card.bottleneck} <= set(BOTTLENECKS)
