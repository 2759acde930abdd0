import copy

import pytest
import torch
from torch import nn

from hasten.core.callback import Callback
from hasten.errors import ConfigError
from hasten.methods import build_method
from hasten.methods.swa import SWA, AveragedModel, snapshot_steps, update_bn
from hasten.optim.schedules import WarmupCosine
from tests.harness import assert_resumes_exactly, image_trainer_factory
from tests.methods.optimization_loops import LrRecorder, cifar_batches, plain_fit, same_weights, seeded_model, sgd


def test_average_is_the_equal_weight_mean_of_the_snapshots():
    model = nn.Linear(1, 1, bias=False)
    average = AveragedModel(model)
    for value in (1.0, 2.0, 3.0, 6.0):
        with torch.no_grad():
            model.weight.fill_(value)
        average.update_parameters(model)
    assert float(average.module.weight.detach()) == 3.0 and int(average.n_averaged) == 4


def test_snapshot_steps_are_interval_multiples_from_the_start():
    assert snapshot_steps(5, 2, 10) == [6, 8, 10]
    assert snapshot_steps(4, 2, 8) == [4, 6, 8]
    assert snapshot_steps(0, 3, 8) == [3, 6]
    assert snapshot_steps(9, 5, 8) == []


def test_algorithm_equals_functional_form_and_averages_what_it_claims(data_dir):
    trainer = image_trainer_factory(
        data_dir, algorithms=lambda: [SWA(start="0.5dur", update_interval="2ba")], eval_data=None
    )()
    trainer.fit()

    model = seeded_model()
    average = AveragedModel(model)
    snapshots = []

    def snapshot(step):
        if step in (4, 6, 8):
            average.update_parameters(model)
            snapshots.append([p.detach().clone() for p in model.parameters()])

    source = cifar_batches(data_dir)
    plain_fit(model, sgd(model), source, steps=8, after_step=snapshot)
    for by_hand, averaged in zip(zip(*snapshots), average.module.parameters()):
        assert torch.allclose(sum(by_hand) / 3, averaged, atol=1e-6)
    with torch.no_grad():
        for target, averaged in zip(model.parameters(), average.module.parameters()):
            target.copy_(averaged)
    update_bn(source.batches(0), model)
    assert same_weights(model, trainer.state.model)


def test_batchnorm_statistics_are_recomputed_for_the_averaged_weights(data_dir):
    trainer = image_trainer_factory(
        data_dir, algorithms=lambda: [SWA(start="0.5dur", update_interval="1ba")], eval_data=None
    )()
    trainer.fit()
    model = trainer.state.model
    conv, norm = model.stem[0], model.stem[1]
    with torch.no_grad():
        means = [conv(x).mean(dim=(0, 2, 3)) for x, _ in cifar_batches(data_dir).batches(0)]
    assert torch.allclose(norm.running_mean, torch.stack(means).mean(0), atol=1e-5)


def test_swa_lr_factor_holds_the_lr_from_the_start(data_dir):
    recorder = LrRecorder()
    make = image_trainer_factory(data_dir, eval_data=None, scheduler=WarmupCosine())
    make(algorithms=[SWA(start="0.5dur", update_interval="1ba", swa_lr_factor=0.2)], callbacks=[recorder]).fit()
    cosine = [0.05 * WarmupCosine()(step, 8) for step in range(8)]
    assert recorder.lrs[:4] == pytest.approx(cosine[:4])
    assert recorder.lrs[4:] == pytest.approx([0.01] * 4)


def test_a_window_with_no_snapshot_fails_clearly(data_dir):
    trainer = image_trainer_factory(
        data_dir, algorithms=lambda: [SWA(start="0.9dur", update_interval="5ba")], eval_data=None
    )()
    with pytest.raises(ConfigError, match="swa would average nothing"):
        trainer.fit()


def test_swa_resumes_exactly(tmp_path, data_dir):
    make = image_trainer_factory(data_dir, algorithms=lambda: [SWA(start="0.25dur", update_interval="1ba")])
    assert_resumes_exactly(make, tmp_path)


def test_evaluations_before_the_end_use_the_running_weights(data_dir):
    seen = {}

    class Capture(Callback):
        def on_eval_start(self, state):  # type: ignore[no-untyped-def]
            seen[state.timestamp.batch] = copy.deepcopy(state.model.head.weight.detach())

    trainer = image_trainer_factory(data_dir, algorithms=lambda: [SWA(start="0.25dur", update_interval="1ba")])(
        eval_interval="4ba", callbacks=[Capture()]
    )
    trainer.fit()
    model = seeded_model()
    raw = {}
    plain_fit(
        model,
        sgd(model),
        cifar_batches(data_dir),
        steps=8,
        after_step=lambda step: raw.setdefault(step, model.head.weight.detach().clone()),
    )
    assert torch.equal(seen[4], raw[4])
    assert not torch.equal(seen[8], raw[8])  # the last evaluation sees the average
    assert torch.equal(seen[8], trainer.state.model.head.weight.detach())


def test_bad_parameters_fail_clearly():
    with pytest.raises(ConfigError, match="update_interval"):
        build_method("swa:update_interval=0.5dur")
    with pytest.raises(ConfigError, match="malformed time"):
        build_method("swa:start=late")
    with pytest.raises(ConfigError, match="swa_lr_factor"):
        build_method("swa:swa_lr_factor=-1")
