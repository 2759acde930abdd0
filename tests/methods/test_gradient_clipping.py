import pytest
import torch

from hasten.errors import ConfigError
from hasten.methods import build_method
from hasten.methods.gradient_clipping import GradientClipping, adaptive_clip_grad_, agc_parameters, clip_gradients
from hasten.methods.sam import SharpnessAwareMinimization
from tests.harness import assert_resumes_exactly, image_trainer_factory
from tests.methods.optimization_loops import cifar_batches, plain_fit, same_weights, seeded_model, sgd


def _params_with_grads(*grads):
    params = []
    for grad in grads:
        p = torch.nn.Parameter(torch.ones_like(grad))
        p.grad = grad.clone()
        params.append(p)
    return params


def _norm(params):
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))


def test_norm_mode_bounds_the_total_norm_and_keeps_the_direction():
    torch.manual_seed(0)
    params = _params_with_grads(torch.randn(10) * 5, torch.randn(3, 4) * 5)
    direction = torch.cat([p.grad.reshape(-1) for p in params])
    clip_gradients(params, "norm", 0.5)
    assert _norm(params) == pytest.approx(0.5, rel=1e-5)
    clipped = torch.cat([p.grad.reshape(-1) for p in params])
    assert torch.allclose(clipped, direction * 0.5 / direction.norm(), atol=1e-6)
    small = _params_with_grads(torch.full((4,), 0.01))
    clip_gradients(small, "norm", 0.5)
    assert torch.equal(small[0].grad, torch.full((4,), 0.01))


def test_value_mode_clamps_each_element():
    params = _params_with_grads(torch.tensor([-3.0, -0.2, 0.1, 2.0]))
    clip_gradients(params, "value", 0.5)
    assert torch.equal(params[0].grad, torch.tensor([-0.5, -0.2, 0.1, 0.5]))


def test_adaptive_mode_matches_the_unitwise_formula():
    weight = torch.nn.Parameter(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    weight.grad = torch.tensor([[0.3, 0.4], [1.0, 0.0]])
    bias = torch.nn.Parameter(torch.tensor([0.6, 0.8]))
    bias.grad = torch.tensor([0.03, 0.04])
    adaptive_clip_grad_([weight, bias], clipping=0.05, eps=1e-3)
    # row 0: ||g|| 0.5 > 0.05 * 5 -> scaled to 0.25; row 1: ||w|| -> eps, bound 5e-5
    assert torch.allclose(weight.grad, torch.tensor([[0.15, 0.2], [5e-5, 0.0]]), atol=1e-9)
    # bias (1-D, whole tensor): ||g|| 0.05 = 0.05 * ||w|| 1.0 -> untouched
    assert torch.allclose(bias.grad, torch.tensor([0.03, 0.04]))


class NormSpy(torch.optim.SGD):
    """Records the gradient norm it is about to apply."""

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.norms: list[float] = []

    def step(self, closure=None):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
        return super().step(closure)


def _spy_trainer(data_dir, algorithms):
    return image_trainer_factory(
        data_dir,
        algorithms=lambda: algorithms,
        eval_data=None,
        optimizer=lambda m: NormSpy(m.parameters(), lr=0.05, momentum=0.9),
    )()


@pytest.mark.parametrize("with_sam", [False, True])
def test_algorithm_bounds_the_norm_of_every_applied_gradient(data_dir, with_sam):
    sam = [SharpnessAwareMinimization(rho=0.5)] if with_sam else []
    free = _spy_trainer(data_dir, sam[:])
    free.fit()
    clipped = _spy_trainer(data_dir, [GradientClipping("norm", 0.2), *sam])
    clipped.fit()
    spy = lambda trainer: trainer.state.optimizer.base_optimizer if with_sam else trainer.state.optimizer  # noqa
    assert max(spy(free).norms) > 0.2  # the bound binds
    assert max(spy(clipped).norms) <= 0.2 * (1 + 1e-5)  # under SAM: the gradient at the perturbed point
    assert not spy(clipped)._optimizer_step_pre_hooks  # removed at FIT_END


@pytest.mark.parametrize("clipping_type, threshold", [("norm", 0.3), ("adaptive", 0.02)])
def test_algorithm_equals_functional_form(data_dir, clipping_type, threshold):
    trainer = image_trainer_factory(
        data_dir, algorithms=lambda: [GradientClipping(clipping_type, threshold)], eval_data=None
    )()
    trainer.fit()
    model = seeded_model()
    params = agc_parameters(model) if clipping_type == "adaptive" else list(model.parameters())
    assert (len(params) < len(list(model.parameters()))) == (clipping_type == "adaptive")  # AGC skips the head
    plain_fit(
        model,
        sgd(model),
        cifar_batches(data_dir),
        steps=8,
        before_step=lambda step: clip_gradients(params, clipping_type, threshold),
    )
    assert same_weights(model, trainer.state.model)


def test_gradient_clipping_resumes_exactly(tmp_path, data_dir):
    make = image_trainer_factory(data_dir, algorithms=lambda: [GradientClipping("adaptive")])
    assert_resumes_exactly(make, tmp_path)


def test_bad_parameters_fail_clearly():
    with pytest.raises(ConfigError, match="clipping_type must be one of norm, value, adaptive"):
        build_method("gradient_clipping:clipping_type=l1")
    with pytest.raises(ConfigError, match="clipping_threshold must be > 0"):
        build_method("gradient_clipping:clipping_threshold=0")
