import pytest
import torch

from hasten.errors import ConfigError
from hasten.methods import build_method
from hasten.methods.muon import MuonMethod
from hasten.optim.muon import Muon, build_muon
from tests.harness import assert_resumes_exactly, image_trainer_factory, weights
from tests.methods.optimization_loops import cifar_batches, plain_fit, same_weights, seeded_model, sgd


def test_method_swaps_in_muon_with_the_baseline_sgd_for_the_rest(data_dir):
    trainer = image_trainer_factory(data_dir, algorithms=lambda: [MuonMethod(lr=0.03)])(max_duration="1ba")
    trainer.fit()
    optimizer, model = trainer.state.optimizer, trainer.state.model
    assert isinstance(optimizer, Muon)
    muon_group, *rest = optimizer.param_groups
    assert muon_group["kind"] == "muon" and muon_group["lr"] == 0.03
    convs = [id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert {id(p) for p in muon_group["params"]} == set(convs[1:])  # every hidden 4-D kernel, nothing else
    assert convs[0] in {id(p) for p in rest[0]["params"]}  # the RGB stem goes with the head, as in the reference
    assert [(g["kind"], g["lr"], g["momentum"]) for g in rest] == [("sgd", 0.05, 0.9)]  # harness baseline
    assert id(model.head.weight) in {id(p) for p in rest[0]["params"]}


def test_algorithm_equals_functional_form(data_dir):
    trainer = image_trainer_factory(data_dir, algorithms=lambda: [MuonMethod()], eval_data=None)()
    trainer.fit()
    model = seeded_model()
    plain_fit(model, build_muon(model, baseline=sgd(model)), cifar_batches(data_dir), steps=8)
    assert same_weights(model, trainer.state.model)


def test_muon_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, algorithms=lambda: [MuonMethod()]), tmp_path)


def test_muon_trains_differently_from_the_baseline(data_dir):
    make = image_trainer_factory(data_dir, eval_data=None, max_duration="2ba")
    baseline, muon = make(), make(algorithms=[MuonMethod()])
    baseline.fit()
    muon.fit()
    assert not torch.equal(weights(baseline)["block.0.weight"], weights(muon)["block.0.weight"])


def test_cli_spelling_builds_it_and_bad_values_fail_clearly():
    method = build_method("muon:lr=0.01,aux=sgd,aux_lr=0.2,ns_steps=3")
    assert (method.lr, method.aux, method.aux_lr, method.ns_steps) == (0.01, "sgd", 0.2, 3)
    with pytest.raises(ConfigError, match="aux must be"):
        build_method("muon:aux=lion")
    with pytest.raises(ConfigError, match="momentum"):
        build_method("muon:momentum=1.5")
