"""The loop: event order, gradient accumulation, honest timing buckets, NaN guard, schedules."""

import time

import pytest
import torch

from hasten.core.algorithm import Algorithm
from hasten.core.callback import Callback
from hasten.core.event import Event
from hasten.core.metrics import Accuracy
from hasten.data.memory import TensorBatches
from hasten.errors import ConfigError
from hasten.optim.schedules import WarmupLinear
from hasten.trainer.trainer import Trainer
from tests.harness import cifar_slice, image_trainer_factory, normalize_images


class EventLog(Callback):
    def __init__(self):
        self.events = []

    def run_event(self, event, state):
        self.events.append(event)


def test_one_step_fires_events_in_order_with_a_forward_per_micro_batch(data_dir):
    log = EventLog()
    make = image_trainer_factory(data_dir, grad_accum=4, callbacks=[log])
    make(max_duration="1ba", eval_interval="1ba").fit()
    events = [e for e in log.events if e is not Event.INIT]
    step = events[events.index(Event.BATCH_START) : events.index(Event.BATCH_END) + 1]
    assert step.count(Event.BEFORE_FORWARD) == 4
    assert step.count(Event.AFTER_BACKWARD) == 4
    assert step.count(Event.BEFORE_OPTIMIZER_STEP) == 1
    micro = [
        Event.BEFORE_FORWARD,
        Event.AFTER_FORWARD,
        Event.BEFORE_LOSS,
        Event.AFTER_LOSS,
        Event.BEFORE_BACKWARD,
        Event.AFTER_BACKWARD,
    ]
    assert step[1:7] == micro
    assert events[0] is Event.FIT_START and events[-1] is Event.FIT_END
    assert events.index(Event.EVAL_START) > events.index(Event.BATCH_END)
    assert events.index(Event.CHECKPOINT if Event.CHECKPOINT in events else Event.FIT_END) > events.index(
        Event.EVAL_END
    )


def test_grad_accum_gives_the_same_update_as_the_full_batch(data_dir):
    make = image_trainer_factory(
        data_dir, model=lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    )
    full = make(max_duration="3ba")
    full.fit()
    accumulated = make(max_duration="3ba", grad_accum=4)
    accumulated.fit()
    for a, b in zip(full.state.model.parameters(), accumulated.state.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_eval_interval_and_final_eval(data_dir):
    result = image_trainer_factory(data_dir)(max_duration="2ep", eval_interval="0.5ep").fit()
    per_epoch = 256 // 32
    assert [e.step for e in result.evals] == [per_epoch // 2 * k for k in range(1, 5)]
    assert result.final == result.evals[-1].metrics
    assert all(0.0 <= e.metrics["accuracy"] <= 1.0 for e in result.evals)
    times = [e.train_time_s for e in result.evals]
    assert times == sorted(times)


def test_eval_points_from_a_list_of_times(data_dir):
    result = image_trainer_factory(data_dir)(max_duration="20ba", eval_interval=["3ba", "0.5dur", "20ba"]).fit()
    assert [e.step for e in result.evals] == [3, 10, 20]


def test_slow_evaluation_does_not_count_as_training(data_dir):
    class SlowAccuracy(Accuracy):
        def update(self, outputs, targets):
            time.sleep(0.3)
            super().update(outputs, targets)

    make = image_trainer_factory(data_dir)
    fast = make(max_duration="1ep", eval_interval="2ba").fit()
    slow = make(max_duration="1ep", eval_interval="2ba", metrics=[SlowAccuracy()]).fit()
    slept = 0.3 * 2 * len(slow.evals)  # two eval batches per evaluation
    assert slow.eval_time_s >= slept
    # had evaluation leaked into training, the slow run's train time would grow by `slept`
    assert slow.train_time_s < fast.train_time_s + 0.5 * slept


def test_slow_data_source_shows_up_in_data_wait(data_dir):
    x, y = cifar_slice(str(data_dir), 256)

    class SlowSource(TensorBatches):
        def batches(self, epoch=0, start=0):
            for batch in super().batches(epoch, start):
                time.sleep(0.05)
                yield batch

    make = image_trainer_factory(data_dir)
    fast = make(max_duration="8ba").fit()
    slow = make(max_duration="8ba", train_data=SlowSource(normalize_images(x), y, 32, seed=0)).fit()
    assert slow.data_wait_s >= 8 * 0.05
    assert slow.data_wait_s - fast.data_wait_s >= 0.35
    assert slow.train_time_s >= slow.data_wait_s


def test_warmup_steps_are_charged_to_the_warmup_bucket(data_dir):
    class SlowFirstStep(Callback):
        def on_batch_end(self, state):
            if state.timestamp.batch == 1:
                time.sleep(0.5)

    make = image_trainer_factory(data_dir, callbacks=[SlowFirstStep()])
    marked = make(max_duration="4ba", warmup_steps=1).fit()
    unmarked = make(max_duration="4ba").fit()
    assert marked.timing["warmup"] >= 0.5 and unmarked.timing["warmup"] == 0.0
    assert unmarked.train_time_s >= 0.5


def test_nan_loss_stops_the_run_as_diverged(data_dir):
    class Poison(Algorithm):
        def match(self, event, state):
            return event is Event.AFTER_LOSS and state.timestamp.batch == 3

        def apply(self, event, state):
            state.loss = state.loss * float("nan")

    make = image_trainer_factory(data_dir, algorithms=lambda: [Poison()])
    trainer = make(max_duration="10ba")
    before = [p.detach().clone() for p in trainer.state.model.parameters()]
    result = trainer.fit()
    assert result.status == "diverged" and result.steps == 3
    assert "step 4" in result.error
    assert result.final == {}
    assert before  # weights at step 3 were stepped from finite gradients only
    assert all(torch.isfinite(p).all() for p in trainer.state.model.parameters())


def test_hasten_schedule_sets_lr_every_step(data_dir):
    seen = []

    class LrLog(Callback):
        def on_after_optimizer_step(self, state):
            seen.append(state.optimizer.param_groups[0]["lr"])

    make = image_trainer_factory(data_dir, callbacks=[LrLog()])
    make(max_duration="10ba", scheduler=WarmupLinear(warmup=2, final=0.0)).fit()
    expected = [0.05 * WarmupLinear(warmup=2, final=0.0)(s, 10) for s in range(10)]
    assert seen == pytest.approx(expected)
    assert seen[-1] == pytest.approx(0.0)


def test_torch_scheduler_factory_is_stepped_per_optimizer_step(data_dir):
    make = image_trainer_factory(data_dir)
    trainer = make(max_duration="4ba", scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5))
    trainer.fit()
    assert trainer.state.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5**4)


def test_closure_optimizers_get_a_closure(data_dir):
    calls = []

    class ClosureSGD(torch.optim.SGD):
        requires_closure = True

        def step(self, closure=None):
            calls.append(float(closure()))
            return super().step()

    make = image_trainer_factory(data_dir)
    make(max_duration="2ba", optimizer=lambda m: ClosureSGD(m.parameters(), lr=0.01)).fit()
    assert len(calls) == 2 and all(c > 0 for c in calls)


def test_bf16_precision_runs_forward_in_bf16(data_dir):
    dtypes = []

    class Peek(Callback):
        def on_after_forward(self, state):
            dtypes.append(state.outputs.dtype)

    image_trainer_factory(data_dir, callbacks=[Peek()])(max_duration="1ba", precision="bf16").fit()
    assert dtypes == [torch.bfloat16]


def test_bad_arguments_are_clear(data_dir):
    make = image_trainer_factory(data_dir)
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        make(precision="fp16")
    with pytest.raises(ConfigError, match="malformed time"):
        make(max_duration="ten epochs")
    with pytest.raises(ConfigError, match="length"):
        Trainer(torch.nn.Linear(2, 2), iter([]), max_duration="1ep", device="cpu")
