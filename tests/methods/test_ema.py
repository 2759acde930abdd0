import pytest
import torch
from torch import nn

from hasten.core.callback import Callback
from hasten.core.composition import check_composition
from hasten.core.event import Event
from hasten.errors import ConfigError, ConflictError
from hasten.methods import build_method
from hasten.methods.ema import EMA, ModelEmaV3, copy_weights
from hasten.methods.swa import SWA
from tests.harness import assert_resumes_exactly, image_trainer_factory
from tests.methods.data_helpers import bare_state
from tests.methods.optimization_loops import cifar_batches, plain_fit, same_weights, seeded_model, sgd


class Scalar(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0]))
        self.register_buffer("stat", torch.tensor([1.0]))
        self.register_buffer("count", torch.tensor(0))


def _set(model: Scalar, value: float, count: int) -> None:
    with torch.no_grad():
        model.w.fill_(value)
        model.stat.fill_(value)
        model.count.fill_(count)


def test_average_is_exactly_the_hand_computed_sequence():
    model = Scalar()
    ema = ModelEmaV3(model, decay=0.5)
    for step, value in enumerate([2.0, 4.0, 8.0], start=1):
        _set(model, value, step)
        ema.update(model, step=step)
    # step 1 copies (2); then 0.5*2 + 0.5*4 = 3; then 0.5*3 + 0.5*8 = 5.5
    assert float(ema.module.w) == 5.5 and float(ema.module.stat) == 5.5
    assert int(ema.module.count) == 3  # integer buffers are copied, not averaged


def test_constant_decay_without_step_and_excluded_buffers():
    model = Scalar()
    ema = ModelEmaV3(model, decay=0.75, exclude_buffers=True)
    _set(model, 5.0, 1)
    ema.update(model)  # no step: constant decay from the copy made at construction
    assert float(ema.module.w) == pytest.approx(0.75 * 1.0 + 0.25 * 5.0)
    assert float(ema.module.stat) == 5.0


def test_warmup_decay_follows_the_formula_and_is_capped():
    ema = ModelEmaV3(Scalar(), decay=0.99, use_warmup=True, update_after_step=2)
    assert ema.get_decay(1) == 0.0 and ema.get_decay(3) == 0.0
    assert ema.get_decay(13) == pytest.approx(1 - (1 + 10) ** (-2 / 3))
    assert ema.get_decay(10**6) == 0.99


def test_copy_weights_is_in_place():
    a, b = Scalar(), Scalar()
    _set(b, 3.0, 7)
    weight = a.w
    copy_weights(b, a)
    assert a.w is weight and float(a.w.detach()) == 3.0 and int(a.count) == 7


def test_bf16_weights_get_an_fp32_average_that_absorbs_small_steps():
    model = nn.Linear(4, 4).to(torch.bfloat16)
    with torch.no_grad():
        model.weight.fill_(4.0)  # bf16 resolution here is 1/64; the EMA's step is 1/1000
    kept_in_bf16 = ModelEmaV3(model, decay=0.999)
    kept_in_fp32 = ModelEmaV3(model, decay=0.999, dtype=torch.float32)
    start = kept_in_fp32.module.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    kept_in_bf16.update(model)
    kept_in_fp32.update(model)
    assert torch.equal(kept_in_bf16.module.weight, start.to(torch.bfloat16))  # the step vanished in bf16
    assert torch.allclose(kept_in_fp32.module.weight, torch.full((4, 4), 4.001), atol=1e-6)
    method = EMA()
    state, engine = bare_state([method], model=model)
    engine.run_event(Event.FIT_START)
    assert method.ema.module.weight.dtype == torch.float32  # chosen automatically


class _EvalWeights(Callback):
    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def on_eval_batch_start(self, state) -> None:  # type: ignore[no-untyped-def]
        if not self.seen or state.timestamp.batch != self.seen[-1][0]:
            self.seen.append((state.timestamp.batch, state.model.head.weight.detach().clone()))


def test_algorithm_equals_functional_form_and_evaluates_with_the_average(data_dir):
    recorder = _EvalWeights()
    trainer = image_trainer_factory(data_dir, algorithms=lambda: [EMA(decay=0.9)])(
        eval_interval="3ba", callbacks=[recorder]
    )
    trainer.fit()

    model = seeded_model()
    ema = ModelEmaV3(model, decay=0.9, use_warmup=True)
    averaged_heads = {}

    def update(step):
        ema.update(model, step=step)
        averaged_heads[step] = ema.module.head.weight.detach().clone()

    plain_fit(model, sgd(model), cifar_batches(data_dir), steps=8, after_step=update)
    assert same_weights(ema.module, trainer.state.model)  # the run ends holding the average
    assert [step for step, _ in recorder.seen] == [3, 6, 8]
    for step, head in recorder.seen:
        assert torch.equal(head, averaged_heads[step])  # every evaluation saw the average
    assert not torch.equal(model.head.weight, ema.module.head.weight)


def test_half_life_sets_the_decay(data_dir):
    for half_life in ("4ba", "0.5dur"):
        method = EMA(half_life=half_life)
        image_trainer_factory(data_dir, algorithms=lambda: [method], eval_data=None)().fit()
        assert method.ema.decay == pytest.approx(0.5 ** (1 / 4))


def test_ema_resumes_exactly(tmp_path, data_dir):
    make = image_trainer_factory(data_dir, algorithms=lambda: [EMA(decay=0.8, update_interval=2)])
    assert_resumes_exactly(make, tmp_path)


def test_conflict_with_swa_is_caught_in_both_orders():
    for pair in ([EMA(), SWA()], [SWA(), EMA()]):
        with pytest.raises(ConflictError, match="'ema' and 'swa'|'swa' and 'ema'"):
            check_composition(pair)


def test_bad_parameters_fail_clearly():
    with pytest.raises(ConfigError, match="decay must be in"):
        build_method("ema:decay=1.0")
    with pytest.raises(ConfigError, match="malformed time"):
        build_method("ema:half_life=soon")
