import copy

import pytest
import torch

from hasten.core.callback import Callback
from hasten.errors import ConfigError
from hasten.methods import build_method
from hasten.methods.sam import SAM, SharpnessAwareMinimization
from hasten.trainer.trainer import default_loss
from tests.harness import assert_resumes_exactly, image_trainer_factory
from tests.methods.optimization_loops import cifar_batches, plain_fit, same_weights, seeded_model, sgd


@pytest.fixture
def batch(data_dir):
    return next(iter(cifar_batches(data_dir).batches(0)))


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_perturbation_has_norm_rho_along_the_gradient_and_the_update_uses_the_gradient_there(batch):
    x, y = batch
    model = seeded_model()
    twin = copy.deepcopy(model)
    rho = 0.07
    optimizer = SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=rho)
    start = _flat(model)
    default_loss(model(x), y).backward()
    gradient = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    seen = {}

    def closure():
        seen["offset"] = _flat(model) - start
        loss = default_loss(model(x), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    offset = seen["offset"]
    assert torch.isclose(offset.norm(), torch.tensor(rho), rtol=1e-4)
    assert torch.allclose(offset, rho * gradient / gradient.norm(), atol=1e-6)

    # By hand: the gradient at w + e, applied to w by plain SGD.
    sizes = [p.numel() for p in twin.parameters()]
    with torch.no_grad():
        for p, e in zip(twin.parameters(), torch.split(offset, sizes)):
            p.add_(e.view_as(p))
    default_loss(twin(x), y).backward()
    sharp_gradient = torch.cat([p.grad.reshape(-1) for p in twin.parameters()])
    assert torch.allclose(_flat(model), start - 0.1 * sharp_gradient, atol=1e-6)


def test_interval_takes_the_sam_step_every_k_steps_only(batch):
    x, y = batch
    model = seeded_model()
    optimizer = SAM(torch.optim.SGD(model.parameters(), lr=0.01), rho=0.05, interval=3)
    calls = []
    for step in range(7):
        optimizer.zero_grad()
        default_loss(model(x), y).backward()

        def closure(step=step):
            calls.append(step)
            loss = default_loss(model(x), y)
            loss.backward()
            return loss

        optimizer.step(closure)
    assert calls == [0, 3, 6]


class _ForwardsPerStep(Callback):
    """Counts the model's forward passes in each training step (the closure fires no events)."""

    def __init__(self) -> None:
        self.per_step: list[int] = []
        self._count = 0

    def on_fit_start(self, state) -> None:  # type: ignore[no-untyped-def]
        state.model.register_forward_hook(lambda *args: setattr(self, "_count", self._count + 1))

    def on_batch_end(self, state) -> None:  # type: ignore[no-untyped-def]
        self.per_step.append(self._count)
        self._count = 0


def test_algorithm_wraps_the_trainer_optimizer_and_recomputes_every_interval(data_dir):
    counter = _ForwardsPerStep()
    trainer = image_trainer_factory(
        data_dir, algorithms=lambda: [SharpnessAwareMinimization(rho=0.1, interval=2)], eval_data=None
    )(max_duration="5ba", callbacks=[counter])
    trainer.fit()
    optimizer = trainer.state.optimizer
    assert isinstance(optimizer, SAM) and isinstance(optimizer.base_optimizer, torch.optim.SGD)
    assert optimizer.param_groups is optimizer.base_optimizer.param_groups
    assert counter.per_step == [2, 1, 2, 1, 2]


def test_algorithm_equals_functional_form(data_dir):
    trainer = image_trainer_factory(
        data_dir, algorithms=lambda: [SharpnessAwareMinimization(interval=2)], eval_data=None
    )()
    trainer.fit()
    model = seeded_model()
    plain_fit(model, SAM(sgd(model), rho=0.05, interval=2), cifar_batches(data_dir), steps=8)
    assert same_weights(model, trainer.state.model)


def test_sam_changes_training(data_dir):
    make = image_trainer_factory(data_dir, eval_data=None, max_duration="2ba")
    plain, sharp = make(), make(algorithms=[SharpnessAwareMinimization(rho=0.5)])
    plain.fit()
    sharp.fit()
    assert not same_weights(plain.state.model, sharp.state.model)


class _AppliedGradientNorm(Callback):
    """After each step the gradients left on the weights are the ones the optimizer applied."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_after_optimizer_step(self, state) -> None:  # type: ignore[no-untyped-def]
        grads = [p.grad for p in state.model.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))


def test_workload_gradient_clipping_also_clips_the_gradient_sam_applies(data_dir):
    applied = _AppliedGradientNorm()
    trainer = image_trainer_factory(data_dir, algorithms=lambda: [SharpnessAwareMinimization(rho=0.1)], eval_data=None)(
        max_duration="3ba", grad_clip_norm=1e-3, callbacks=[applied]
    )
    trainer.fit()
    assert len(applied.norms) == 3
    assert all(norm <= 1e-3 * (1 + 1e-4) for norm in applied.norms), applied.norms


def test_sam_resumes_exactly_including_its_interval_counter(tmp_path, data_dir):
    # interval=3 with a checkpoint after step 4: a counter restarted at 0 would take a SAM step at step 5.
    make = image_trainer_factory(data_dir, algorithms=lambda: [SharpnessAwareMinimization(interval=3)])
    assert_resumes_exactly(make, tmp_path)


def test_bad_parameters_fail_clearly():
    with pytest.raises(ConfigError, match="rho must be > 0"):
        build_method("sam:rho=0")
    with pytest.raises(ConfigError, match="interval must be >= 1"):
        build_method("sam:interval=0")
    with pytest.raises(ValueError, match="needs step\\(closure\\)"):
        model = torch.nn.Linear(2, 1)
        model(torch.ones(1, 2)).sum().backward()
        SAM(torch.optim.SGD(model.parameters(), lr=0.1)).step()
