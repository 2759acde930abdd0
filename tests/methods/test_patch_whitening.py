import pytest
import torch
from torch import nn

from hasten.core.callback import Callback
from hasten.errors import ConfigError
from hasten.methods.patch_whitening import (
    PatchWhitening,
    WhiteningConv2d,
    apply_patch_whitening,
    patch_statistics,
    whitening_filters,
    whitening_layers,
)
from hasten.methods.surgery import sample_inputs
from hasten.models import CifarResNet
from tests.harness import TinyConvNet, assert_resumes_exactly, cifar_slice, image_trainer_factory, normalize_images
from tests.methods.model_helpers import (
    assert_same_weights,
    cifar_source,
    gpt_trainer_factory,
    reseed,
    train_by_hand,
    weights_of,
)


@pytest.fixture(scope="module")
def images(data_dir):
    x, _ = cifar_slice(str(data_dir), 512)
    x = normalize_images(x)
    return x[:256], x[256:]


class Classifier(nn.Module):
    """Defined only here: the conv reading the images is not the first module."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Identity()
        self.reader = nn.Conv2d(3, 16, 5, stride=2, padding=2)
        self.act = nn.ReLU()
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.act(self.reader(self.scale(x))).mean((2, 3)))


def whitened_patch_covariance(filters: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    mean, covariance = patch_statistics(images, filters.shape[-1])
    w = filters.flatten(1).double()
    return w @ covariance @ w.T


def test_whitening_filters_make_the_patch_covariance_the_identity(images):
    fit, held_out = images
    filters, eigenvalues, _ = whitening_filters(fit, 2, eps=1e-9)
    assert filters.shape == (12, 3, 2, 2)
    assert torch.all(eigenvalues[:-1] >= eigenvalues[1:])  # largest first
    assert (whitened_patch_covariance(filters, fit) - torch.eye(12, dtype=torch.float64)).abs().max() < 1e-3
    raw = patch_statistics(held_out, 2)[1]
    assert torch.linalg.cond(raw) > 100  # neighbouring pixels and colours are strongly correlated
    unseen = whitened_patch_covariance(filters, held_out)
    assert torch.linalg.cond(unseen) < 5 and unseen.diagonal().min() > 0.5 and unseen.diagonal().max() < 2
    # with airbench's eps the small directions are damped: lambda / (lambda + eps)
    damped, eigenvalues, _ = whitening_filters(fit, 2, eps=5e-4)
    expected = torch.diag((eigenvalues / (eigenvalues + 5e-4)).double())
    assert (whitened_patch_covariance(damped, fit) - expected).abs().max() < 1e-3


def test_the_layer_outputs_zero_mean_whitened_channels_and_their_negations(images):
    fit, _ = images
    layer = WhiteningConv2d(3, 2, keep_size=False)
    eigenvalues = layer.fit(fit, eps=1e-9)
    assert torch.equal(layer.weight[12:], -layer.weight[:12])
    with torch.no_grad():
        out = layer(fit)[:, :12].permute(1, 0, 2, 3).reshape(12, -1).double()
    assert out.shape[1] == 256 * 31 * 31
    assert out.mean(1).abs().max() < 1e-3
    assert (torch.cov(out, correction=0) - torch.eye(12, dtype=torch.float64)).abs().max() < 2e-3
    assert len(eigenvalues) == 12


def test_surgery_on_a_model_defined_here_and_on_the_shared_net(images):
    fit, _ = images
    model = Classifier()
    x = fit[:4]
    shape = model(x).shape
    layer = apply_patch_whitening(model, fit, kernel_size=2)
    assert isinstance(model.reader, nn.Sequential) and model.reader[0] is layer
    assert isinstance(model.reader[1], nn.GELU)
    new = model.reader[2]
    assert (new.in_channels, new.out_channels, new.kernel_size, new.stride) == (24, 16, (5, 5), (2, 2))
    assert model(x).shape == shape
    names = dict(model.named_parameters())
    assert "reader.0.bias" in names and "reader.0.weight" not in names  # the filters never train
    assert "reader.0.weight" in model.state_dict()  # but travel with the model
    tiny = TinyConvNet()
    apply_patch_whitening(tiny, fit, keep_size=False)
    assert tiny.stem[0](x).shape == (4, 16, 31, 31)  # airbench's unpadded 2x2 layer drops a row and column
    assert tiny(x).shape == (4, 10) and whitening_layers(tiny) == [tiny.stem[0][0]]
    resnet = CifarResNet()
    apply_patch_whitening(resnet, fit)
    assert isinstance(resnet.stem[0], nn.Sequential) and resnet(x).shape == (4, 10)


def test_refuses_inputs_that_are_not_images(images, data_dir):
    with pytest.raises(ConfigError, match="first conv"):
        apply_patch_whitening(Classifier(), images[0][:, :1])
    with pytest.raises(ConfigError, match="image"):
        gpt_trainer_factory(data_dir, lambda: [PatchWhitening()])()


class BiasSpy(Callback):
    def __init__(self) -> None:
        self.trains, self.biases, self.filters = [], [], []

    def on_batch_start(self, state) -> None:
        layer = whitening_layers(state.model)[0]
        self.trains.append(layer.bias.requires_grad)

    def on_batch_end(self, state) -> None:
        layer = whitening_layers(state.model)[0]
        self.biases.append(layer.bias.detach().clone())
        self.filters.append(layer.weight.clone())


def test_algorithm_fits_at_fit_start_and_trains_the_bias_only_until_its_time(data_dir):
    spy = BiasSpy()
    trainer = image_trainer_factory(data_dir, lambda: [PatchWhitening(num_images=200)])(callbacks=[spy])
    assert whitening_layers(trainer.state.model)[0].weight.abs().sum() == 0  # inserted, not yet fitted
    trainer.fit()
    assert spy.trains == [True, True, True] + [False] * 5  # 0.3dur of 8 steps: frozen from step 3
    assert not torch.equal(spy.biases[2], spy.biases[0])
    assert all(torch.equal(b, spy.biases[2]) for b in spy.biases[3:])
    expected = whitening_filters(sample_inputs(trainer.state.train_data, 200), 2, 5e-4)[0]
    assert torch.allclose(spy.filters[-1][:12], expected) and torch.equal(spy.filters[0], spy.filters[-1])


def test_functional_form_equals_the_algorithm(data_dir):
    trainer = image_trainer_factory(data_dir, lambda: [PatchWhitening(num_images=200)])()
    trainer.fit()
    torch.manual_seed(0)
    model = TinyConvNet()
    reseed()
    source = cifar_source(data_dir)
    layer = apply_patch_whitening(model, sample_inputs(source, 200))

    def on_batch(step, progress):
        if progress >= 0.3:
            layer.bias.requires_grad_(False)

    train_by_hand(model, source, on_batch=on_batch)
    assert_same_weights(weights_of(trainer.state.model), weights_of(model))


def test_patch_whitening_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, lambda: [PatchWhitening(num_images=200)]), tmp_path)
