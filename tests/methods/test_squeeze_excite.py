import pytest
import torch
from torch import nn

from hasten.errors import ConfigError
from hasten.methods import build_method
from hasten.methods.squeeze_excite import (
    SqueezeExcite,
    SqueezeExcite2d,
    SqueezeExciteWrapper,
    apply_squeeze_excite,
    latent_size,
)
from hasten.models import CifarResNet
from tests.harness import TinyConvNet, assert_resumes_exactly, image_trainer_factory
from tests.methods.model_helpers import weights_of


class WideNarrow(nn.Module):
    """Defined only here: two convs wide enough for a gate, one too narrow, and a grouped conv."""

    def __init__(self) -> None:
        super().__init__()
        self.narrow = nn.Conv2d(3, 32, 3, padding=1)
        self.wide = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.depthwise = nn.Conv2d(64, 128, 3, padding=1, groups=64)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.depthwise(self.wide(self.narrow(x))).mean((2, 3)))


def test_gate_is_the_papers_formula():
    torch.manual_seed(0)
    se = SqueezeExcite2d(64, 1 / 16)
    assert se.squeeze.out_features == 4  # r = 16
    x = torch.randn(2, 64, 5, 5)
    z = x.mean((2, 3))
    s = torch.sigmoid(
        se.excite.weight @ torch.relu(se.squeeze.weight @ z.T + se.squeeze.bias[:, None]) + se.excite.bias[:, None]
    ).T
    assert torch.allclose(se(x), x * s[:, :, None, None], atol=1e-6)
    assert latent_size(64, 8) == 8 and latent_size(10, 0.01) == 1
    with pytest.raises(ConfigError):
        latent_size(64, 0)


def test_gates_every_wide_conv_of_a_model_defined_here():
    torch.manual_seed(0)
    model = WideNarrow()
    x = torch.randn(2, 3, 16, 16)
    shape, wide_weight = model(x).shape, model.wide.weight
    before = sum(p.numel() for p in model.parameters())
    assert apply_squeeze_excite(model, min_channels=32) == 2  # wide (32 -> 64) and depthwise (64 -> 128)
    assert isinstance(model.wide, SqueezeExciteWrapper) and model.wide.module.weight is wide_weight
    assert isinstance(model.depthwise, SqueezeExciteWrapper) and type(model.narrow) is nn.Conv2d
    added = sum(p.numel() for p in model.parameters()) - before
    assert added == (64 * 4 + 4 + 4 * 64 + 64) + (128 * 8 + 8 + 8 * 128 + 128)
    assert model(x).shape == shape


def test_conv_placement_is_composers_both_widths_must_reach_min_channels():
    """Composer gates a Conv2d only if min(in_channels, out_channels) >= min_channels: never the RGB stem."""
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1),
        nn.Conv2d(64, 32, 3, padding=1),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.Conv2d(64, 64, 3, padding=1),
    )
    expected = [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and min(m.in_channels, m.out_channels) >= 64
    ]
    assert apply_squeeze_excite(model, min_channels=64) == 1
    assert [n for n, m in model.named_children() if isinstance(m, SqueezeExciteWrapper)] == expected == ["3"]


def test_residual_placement_gates_branches_before_the_addition():
    resnet = CifarResNet()
    count = apply_squeeze_excite(resnet, min_channels=32, placement="residual", example_input=torch.randn(2, 3, 32, 32))
    assert count == 2
    gated = [n for n, m in resnet.named_modules() if isinstance(m, SqueezeExciteWrapper)]
    assert gated == ["stages.0.blocks.0.conv2", "stages.2.blocks.0.conv2"]  # SE-ResNet: on f(x) of x + f(x)
    with pytest.raises(ConfigError):
        apply_squeeze_excite(CifarResNet(), placement="residual")


def test_new_gates_join_the_optimizer_group_of_their_conv():
    model = WideNarrow()
    opt = torch.optim.SGD(
        [
            {"params": model.wide.parameters(), "lr": 0.1},
            {"params": [p for n, p in model.named_parameters() if not n.startswith("wide")], "lr": 0.01},
        ]
    )
    apply_squeeze_excite(model, min_channels=32, predicate=lambda name, m: name == "wide", optimizer=opt)
    assert {id(p) for p in model.wide.se.parameters()} <= {id(p) for p in opt.param_groups[0]["params"]}
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_algorithm_refuses_a_model_without_wide_convs(data_dir):
    with pytest.raises(ConfigError, match="squeeze_excite found no Conv2d with >= 64 input and output channels"):
        image_trainer_factory(data_dir, lambda: [SqueezeExcite()])()
    with pytest.raises(ConfigError):
        build_method("squeeze_excite:placement=everywhere")


def test_functional_form_equals_the_algorithm(data_dir):
    trainer = image_trainer_factory(data_dir, lambda: [build_method("squeeze_excite:min_channels=16")])()
    torch.manual_seed(0)
    model = TinyConvNet()
    torch.manual_seed(0)  # the Trainer reseeds before its INIT surgery
    apply_squeeze_excite(model, min_channels=16)
    a, b = weights_of(model), weights_of(trainer.state.model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "down.0.se.squeeze.weight" in a and "block.0.se.excite.weight" in a


def test_squeeze_excite_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, lambda: [SqueezeExcite(min_channels=32)]), tmp_path)
