"""flash_adamw / flash_sgd / flash_lion through the registry, the Trainer, the store and resume."""

import pytest
import torch

from hasten.core.composition import check_composition
from hasten.errors import ConfigError, ConflictError
from hasten.methods import build_method, build_methods, get_method
from hasten.methods.flashoptim import FlashAdamWMethod, FlashLionMethod, FlashSGDMethod
from hasten.optim.flash import FlashAdamW, FlashLion, FlashSGD
from hasten.store.store import RunStore
from tests.harness import assert_resumes_exactly, image_trainer_factory


@pytest.mark.parametrize("name", ["flash_adamw", "flash_sgd", "flash_lion"])
def test_cards_place_the_methods_in_the_taxonomy(name):
    card = get_method(name).card
    assert (card.component, card.action, card.mechanism) == ("optimization", "restrict", "memory")
    assert card.bottleneck == ("memory",) and card.paper.arxiv == "2602.23349"
    assert {"muon", "sam", "lookahead"} <= set(card.conflicts) and card.resume


PAIRS = [
    ["flash_adamw", "muon"],
    ["muon", "flash_sgd"],
    ["flash_lion", "flash_adamw"],
    ["flash_adamw", "lookahead"],
    ["flash_sgd:gradient_release=true", "gradient_clipping"],
]


@pytest.mark.parametrize("pair", PAIRS)
def test_other_optimizer_replacements_conflict(pair):
    with pytest.raises(ConflictError, match="conflict"):
        check_composition(build_methods(pair))
    check_composition(build_methods(["flash_sgd", "gradient_clipping"]))  # without release clipping is fine


def test_bad_parameters_are_refused():
    with pytest.raises(ConfigError, match="master_weight_bits"):
        build_method("flash_adamw:master_weight_bits=16")
    with pytest.raises(ConfigError, match="nesterov"):
        build_method("flash_sgd:nesterov=maybe")


def test_flash_sgd_inherits_the_workload_sgd_and_records_memory(tmp_path, data_dir):
    store = RunStore(tmp_path / "runs.db")
    trainer = image_trainer_factory(data_dir, algorithms=lambda: [FlashSGDMethod()], store=store)()
    result = trainer.fit()
    optimizer = trainer.state.optimizer
    assert result.status == "completed" and isinstance(optimizer, FlashSGD)
    group = optimizer.param_groups[0]
    assert group["initial_lr"] == 0.05 and group["momentum"] == 0.9  # the harness baseline's SGD settings
    model = trainer.state.model
    assert model.head.weight.dtype == torch.bfloat16 and model.stem[1].weight.dtype == torch.float32
    memory = store.get_run(result.run_id).config["memory"]
    assert memory["optimizer"] == "FlashSGD" and memory["bytes_per_param"] <= 6.3
    assert memory["by_category"]["corrections"] < 1.0  # batch norm's fp32 parameters need none


def test_flash_adamw_on_an_sgd_workload_needs_its_own_lr(data_dir):
    trainer = image_trainer_factory(data_dir, algorithms=lambda: [FlashAdamWMethod()])()
    with pytest.raises(ConfigError, match="flash_adamw:lr="):
        trainer.fit()
    trainer = image_trainer_factory(data_dir, algorithms=lambda: [FlashAdamWMethod(lr=2e-3, beta2=0.99)])()
    assert trainer.fit().status == "completed"
    group = trainer.state.optimizer.param_groups[0]
    assert isinstance(trainer.state.optimizer, FlashAdamW) and group["betas"] == (0.9, 0.99)
    assert group["weight_decay"] == 1e-2  # AdamW's own default, not SGD's coupled L2


def test_flash_adamw_inherits_an_adamw_baseline(data_dir):
    make = image_trainer_factory(
        data_dir,
        algorithms=lambda: [FlashAdamWMethod(gradient_release=True)],
        optimizer=lambda m: torch.optim.AdamW(m.parameters(), lr=4e-3, weight_decay=0.05),
    )
    trainer = make(max_duration="3ba")
    assert trainer.fit().status == "completed"
    group = trainer.state.optimizer.param_groups[0]
    assert group["initial_lr"] == 4e-3 and group["weight_decay"] == 0.05
    memory = trainer.state.run_info["config"]["memory"]
    assert "gradients" not in memory["by_category"] and memory["bytes_per_param"] <= 5.4
    assert not trainer.state.optimizer.gradient_release_active  # released at FIT_END


def test_gradient_release_refuses_accumulation_and_clipping(data_dir):
    with pytest.raises(ConfigError, match="cannot accumulate gradients"):
        image_trainer_factory(data_dir, algorithms=lambda: [FlashSGDMethod(gradient_release=True)], grad_accum=2)()
    with pytest.raises(ConfigError, match="global gradient norm"):
        image_trainer_factory(
            data_dir, algorithms=lambda: [FlashSGDMethod(gradient_release=True)], grad_clip_norm=1.0
        )()


def test_flash_lion_trains(data_dir):
    trainer = image_trainer_factory(data_dir, algorithms=lambda: [FlashLionMethod(lr=5e-4)])(max_duration="3ba")
    assert trainer.fit().status == "completed" and isinstance(trainer.state.optimizer, FlashLion)


def test_flash_adamw_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, algorithms=lambda: [FlashAdamWMethod(lr=2e-3)]), tmp_path)


def test_flash_sgd_with_gradient_release_resumes_exactly(tmp_path, data_dir):
    algorithms = lambda: [FlashSGDMethod(gradient_release=True)]  # noqa: E731
    assert_resumes_exactly(image_trainer_factory(data_dir, algorithms=algorithms), tmp_path)
