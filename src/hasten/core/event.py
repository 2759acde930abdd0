"""The training loop's named moments, in the order the Trainer fires them."""

from __future__ import annotations

from enum import Enum


class Event(str, Enum):
    """A point in the training loop where algorithms and callbacks run.

    Forward, loss and backward events fire once per micro-batch when gradients
    are accumulated; the others fire once per optimizer step or less often.
    The Trainer (``hasten/trainer/trainer.py``) fires them in this order::

        INIT                                  # Trainer(...): model surgery
        # fit(): build the optimizer, plan the run (state.plan), load a checkpoint if resuming
        FIT_START
        while not done:
            EPOCH_START                       # unless resuming mid-epoch
            for batch in epoch:
                BEFORE_DATALOADER; batch = next(batches); AFTER_DATALOADER
                BATCH_START
                for micro_batch in split(batch, grad_accum):
                    BEFORE_FORWARD;  outputs = model(inputs);        AFTER_FORWARD
                    BEFORE_LOSS;     loss = loss_fn(outputs, targets); AFTER_LOSS
                    BEFORE_BACKWARD; loss.backward();                AFTER_BACKWARD
                # NaN guard, gradient clipping, schedule sets each group's lr
                BEFORE_OPTIMIZER_STEP; optimizer.step(); AFTER_OPTIMIZER_STEP
                BATCH_END                     # timestamp counts the step
                if eval due: EVAL_START; (EVAL_BATCH_START; forward; EVAL_BATCH_END)*; EVAL_END
                if checkpoint due: CHECKPOINT
            EPOCH_END
        final evaluation (if not just done); CHECKPOINT (if a checkpoint_dir is set)
        FIT_END
    """

    INIT = "init"
    FIT_START = "fit_start"
    EPOCH_START = "epoch_start"
    BEFORE_DATALOADER = "before_dataloader"
    AFTER_DATALOADER = "after_dataloader"
    BATCH_START = "batch_start"
    BEFORE_FORWARD = "before_forward"
    AFTER_FORWARD = "after_forward"
    BEFORE_LOSS = "before_loss"
    AFTER_LOSS = "after_loss"
    BEFORE_BACKWARD = "before_backward"
    AFTER_BACKWARD = "after_backward"
    BEFORE_OPTIMIZER_STEP = "before_optimizer_step"
    AFTER_OPTIMIZER_STEP = "after_optimizer_step"
    BATCH_END = "batch_end"
    EVAL_START = "eval_start"
    EVAL_BATCH_START = "eval_batch_start"
    EVAL_BATCH_END = "eval_batch_end"
    EVAL_END = "eval_end"
    EPOCH_END = "epoch_end"
    CHECKPOINT = "checkpoint"
    FIT_END = "fit_end"

    @property
    def is_before(self) -> bool:
        return self.value.startswith("before_")

    @property
    def is_after(self) -> bool:
        return self.value.startswith("after_")

    @property
    def counterpart(self) -> "Event | None":
        """The matching AFTER_x for BEFORE_x and back; None for unpaired events."""
        if self.is_before:
            return Event("after_" + self.value[len("before_") :])
        if self.is_after:
            return Event("before_" + self.value[len("after_") :])
        return None

    @property
    def is_eval(self) -> bool:
        return self.value.startswith("eval_")


EVENT_ORDER: tuple[Event, ...] = tuple(Event)
