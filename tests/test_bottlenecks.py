"""One bottleneck vocabulary for the cards, the evidence and the verdict."""

from hasten.bottlenecks import BOTTLENECKS
from hasten.methods import all_methods
from hasten.methods import card as card_module
from hasten.profile import evidence, verdict


def test_cards_evidence_and_verdict_share_one_vocabulary():
    assert card_module.BOTTLENECKS is BOTTLENECKS
    assert evidence.BOTTLENECKS is BOTTLENECKS
    assert verdict.PRIORITY is BOTTLENECKS and set(verdict.WATCH) == set(BOTTLENECKS)
    assert {b for entry in all_methods() for b in entry.card.bottleneck} <= set(BOTTLENECKS)
