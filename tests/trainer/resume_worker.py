"""A training process for the kill-and-resume test: run, optionally slowly, and save final weights.

python -m tests.trainer.resume_worker DATA_DIR CKPT_DIR OUT.pt {full,slow,resume}
"""

import sys
import time
from pathlib import Path

import torch

from hasten.core.callback import Callback
from tests.harness import image_trainer_factory

STEPS = 24


class Slow(Callback):
    """Slows every step so the parent can kill the process between checkpoints."""

    def on_batch_end(self, state):
        time.sleep(0.25)


def main() -> None:
    data_dir, ckpt_dir, out, mode = sys.argv[1:5]
    torch.set_num_threads(1)
    # a data-augmenting transform makes the RNG state matter for exact resume
    flip = lambda x, y: (torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x.flip(3), x), y)  # noqa: E731
    make = image_trainer_factory(
        data_dir,
        transform=flip,
        max_duration=f"{STEPS}ba",
        checkpoint_dir=None if mode == "full" else ckpt_dir,
        checkpoint_interval="4ba",
    )
    trainer = make(callbacks=[Slow()] if mode == "slow" else [], resume_from=ckpt_dir if mode == "resume" else None)
    result = trainer.fit()
    torch.save({"weights": trainer.state.model.state_dict(), "steps": result.steps}, Path(out))


if __name__ == "__main__":
    main()
