import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hasten.errors import ConfigError
from hasten.methods import build_method
from hasten.methods.blurpool import (
    BlurConv2d,
    BlurMaxPool2d,
    BlurPool,
    BlurPool2d,
    apply_blurpool,
    binomial_filter,
    blur_2d,
)
from hasten.models import CifarResNet
from tests.harness import TinyConvNet, assert_resumes_exactly, image_trainer_factory
from tests.methods.model_helpers import weights_of


class Downsampler(nn.Module):
    """Defined only here: what BlurPool must replace (strided convs with >= 16 inputs, downsampling
    max-pools) and what it must leave (the RGB stem, stride-1 convs, a ceil_mode pool, a 1x1 pool)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)  # too few input channels
        self.same = nn.Conv2d(16, 16, 3, padding=1)  # stride 1
        self.down = nn.Conv2d(16, 32, 3, stride=2, padding=1)  # replaced
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)  # replaced
        self.ceil = nn.MaxPool2d(2, ceil_mode=True)  # left: shape could change
        self.flat = nn.MaxPool2d(1)  # left: does not downsample
        self.rect = nn.Conv2d(32, 32, (3, 1), stride=(2, 1), padding=(1, 0))  # replaced
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = self.flat(self.ceil(self.pool(self.down(self.same(self.stem(x))))))
        return self.head(self.rect(x).mean((2, 3)))


def shapes(model: nn.Module, x: torch.Tensor) -> list:
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape))) for name, m in model.named_children()]
    model(x)
    for h in hooks:
        h.remove()
    return seen


def test_binomial_filter_is_pascals_triangle_normalised():
    assert torch.allclose(binomial_filter(3), torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16.0)
    assert torch.allclose(binomial_filter(5).sum(), torch.tensor(1.0))
    with pytest.raises(ConfigError):
        binomial_filter(9)


def test_the_blur_removes_the_frequency_that_plain_subsampling_aliases():
    # a +1/-1 checkerboard is the highest frequency an image can hold
    board = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 2.0 - 1.0
    board = board.expand(1, 2, 16, 16)
    aliased = board[..., ::2, ::2]  # plain stride-2 subsampling turns it into a flat -1 image
    assert torch.equal(aliased, -torch.ones_like(aliased))
    blurred = BlurPool2d(2, stride=2)(board)
    assert blurred.shape == aliased.shape
    assert blurred[..., 1:-1, 1:-1].abs().max() < 1e-6  # anti-aliased: the checkerboard is gone
    flat = torch.full((1, 2, 9, 9), 3.0)
    assert torch.allclose(blur_2d(flat, binomial_filter(3), 2), torch.full((1, 2, 5, 5), 3.0))


@pytest.mark.parametrize("stride", [1, 2])
def test_padding_modes_reproduce_the_references(stride):
    """Zhang's reference code pads by reflection ((k-1)//2 before, the rest after); Composer's blur_2d
    pads with zeros (k//2 each side, odd k only). Both then run a depthwise binomial conv."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 10) + 3.0  # an offset makes zero padding visibly darken the border
    for size in (3, 4, 5):
        row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float32)
        kernel = (torch.outer(row, row) / row.sum() ** 2).expand(3, 1, size, size)
        before, after = (size - 1) // 2, size // 2
        zhang = F.conv2d(nn.ReflectionPad2d((before, after, before, after))(x), kernel, stride=stride, groups=3)
        assert torch.allclose(blur_2d(x, binomial_filter(size), stride), zhang, atol=1e-6)  # the default
        if size % 2:
            composer = F.conv2d(x, kernel, stride=stride, padding=size // 2, groups=3)
            assert torch.allclose(blur_2d(x, binomial_filter(size), stride, padding_mode="zeros"), composer, atol=1e-6)
            assert not torch.allclose(zhang, composer, atol=1e-3)


def test_replaces_exactly_the_downsampling_layers_and_keeps_every_shape():
    torch.manual_seed(0)
    model = Downsampler()
    inputs = [torch.randn(2, 3, 32, 32), torch.randn(2, 3, 29, 23)]
    expected = [shapes(model, x) for x in inputs]
    down_conv, rect_conv = model.down, model.rect
    assert apply_blurpool(model) == 3
    assert isinstance(model.down, BlurConv2d) and model.down.conv is down_conv
    assert isinstance(model.rect, BlurConv2d) and model.rect.conv is rect_conv
    assert isinstance(model.pool, BlurMaxPool2d)
    assert type(model.stem) is nn.Conv2d and type(model.same) is nn.Conv2d
    assert type(model.ceil) is nn.MaxPool2d and type(model.flat) is nn.MaxPool2d
    assert [shapes(model, x) for x in inputs] == expected


def test_blur_first_is_blur_then_the_unchanged_strided_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 8, 3, stride=2, padding=1)
    x = torch.randn(2, 16, 12, 12)
    wrapped = BlurConv2d(conv, blur_first=True)
    by_hand = conv(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), binomial_filter(3).expand(16, 1, 3, 3), groups=16))
    assert torch.allclose(wrapped(x), by_hand, atol=1e-6)
    after = BlurConv2d(nn.Conv2d(16, 8, 3, stride=2, padding=1), blur_first=False)
    assert after.conv.stride == (1, 1) and after(x).shape == by_hand.shape


def test_predicate_narrows_and_parameters_stay_in_the_optimizer():
    model = Downsampler()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    held = [id(p) for g in opt.param_groups for p in g["params"]]
    assert apply_blurpool(model, predicate=lambda name, m: name == "down", optimizer=opt) == 1
    assert isinstance(model.down, BlurConv2d) and isinstance(model.pool, nn.MaxPool2d)
    assert sorted(id(p) for p in model.parameters()) == sorted(held)  # blur filters are buffers, not weights
    assert "down.blur.kernel" not in model.state_dict()


def test_shared_and_library_models():
    tiny = TinyConvNet()
    assert apply_blurpool(tiny) == 2  # the strided conv (16 in) and the max-pool
    assert isinstance(tiny.down[0], BlurConv2d) and isinstance(tiny.down[3], BlurMaxPool2d)
    resnet, x = CifarResNet(), torch.randn(2, 3, 32, 32)
    before = resnet(x).shape
    assert apply_blurpool(resnet) == 3  # one max-pool per stage; no strided convs
    assert resnet(x).shape == before


def test_algorithm_refuses_a_model_with_nothing_to_anti_alias():
    state = type("S", (), {"model": nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), "optimizer": None})()
    with pytest.raises(ConfigError, match="blurpool found no"):
        BlurPool().apply(None, state)
    with pytest.raises(ConfigError):
        build_method("blurpool:padding_mode=circular")


def test_functional_form_equals_the_algorithm(data_dir):
    trainer = image_trainer_factory(data_dir, lambda: [build_method("blurpool:blur_first=false")])()
    torch.manual_seed(0)
    model = TinyConvNet()
    apply_blurpool(model, blur_first=False)
    assert repr(model) == repr(trainer.state.model)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model.eval()(x), trainer.state.model.eval()(x))
    assert weights_of(model).keys() == weights_of(trainer.state.model).keys()


def test_blurpool_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, lambda: [BlurPool()]), tmp_path)
