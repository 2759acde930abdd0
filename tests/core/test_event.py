from hasten.core.event import EVENT_ORDER, Event

ISSUE_ORDER = (
    "INIT FIT_START EPOCH_START BEFORE_DATALOADER AFTER_DATALOADER BATCH_START BEFORE_FORWARD AFTER_FORWARD "
    "BEFORE_LOSS AFTER_LOSS BEFORE_BACKWARD AFTER_BACKWARD BEFORE_OPTIMIZER_STEP AFTER_OPTIMIZER_STEP BATCH_END "
    "EVAL_START EVAL_BATCH_START EVAL_BATCH_END EVAL_END EPOCH_END CHECKPOINT FIT_END"
).split()


def test_events_are_in_the_documented_order():
    assert [e.name for e in EVENT_ORDER] == ISSUE_ORDER


def test_before_and_after_events_pair_up():
    assert Event.BEFORE_FORWARD.counterpart is Event.AFTER_FORWARD
    assert Event.AFTER_OPTIMIZER_STEP.counterpart is Event.BEFORE_OPTIMIZER_STEP
    assert Event.BATCH_END.counterpart is None
    paired = [e for e in Event if e.is_before]
    assert all(e.counterpart.is_after for e in paired)
    assert len(paired) == 5
