import torch
from torch import nn

from hasten.core.callback import Callback
from hasten.methods import build_method
from hasten.methods.channels_last import ChannelsLast, apply_channels_last, remove_channels_last, to_channels_last
from hasten.models import CifarResNet
from tests.harness import TinyConvNet, assert_resumes_exactly, image_trainer_factory
from tests.methods.model_helpers import assert_same_weights, cifar_source, reseed, train_by_hand, weights_of

NHWC = torch.channels_last


class Mixed(nn.Module):
    """Defined only here: a 4-D conv weight, a 2-D linear weight, 1-D norms and a 4-D buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.register_buffer("mask", torch.ones(1, 8, 1, 1))
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        return self.head((self.norm(self.conv(x)) * self.mask).mean((2, 3)))


def test_4d_parameters_and_buffers_become_nhwc_and_the_rest_stays():
    model = Mixed()
    conv_weight = model.conv.weight
    apply_channels_last(model)
    assert model.conv.weight is conv_weight  # same Parameter object: optimizers keep working
    assert model.conv.weight.is_contiguous(memory_format=NHWC)
    assert not model.conv.weight.is_contiguous()
    assert model.mask.shape == (1, 8, 1, 1)
    assert model.head.weight.is_contiguous() and model.norm.weight.is_contiguous()
    remove_channels_last(model)
    assert model.conv.weight.is_contiguous()


def test_same_outputs_in_either_layout():
    torch.manual_seed(0)
    model, x = TinyConvNet().eval(), torch.randn(4, 3, 32, 32)
    expected = model(x)
    apply_channels_last(model)
    nhwc = to_channels_last(x)
    assert nhwc.is_contiguous(memory_format=NHWC) and torch.equal(nhwc, x)
    assert torch.allclose(model(nhwc), expected, atol=1e-5)
    flat = torch.randn(4, 10)
    assert to_channels_last(flat) is flat


class LayoutSpy(Callback):
    def __init__(self) -> None:
        self.train, self.eval = [], []

    def on_before_forward(self, state) -> None:
        self.train.append(state.inputs.is_contiguous(memory_format=NHWC))

    def on_eval_batch_start(self, state) -> None:
        self.eval.append(state.eval_batch[0].is_contiguous(memory_format=NHWC))


def test_trainer_feeds_nhwc_inputs_for_training_and_evaluation(data_dir):
    spy = LayoutSpy()
    trainer = image_trainer_factory(data_dir, lambda: [build_method("channels_last")], model=Mixed)(
        max_duration="3ba", callbacks=[spy]
    )
    assert trainer.state.model.conv.weight.is_contiguous(memory_format=NHWC)
    trainer.fit()
    assert spy.train == [True] * 3 and spy.eval and all(spy.eval)


def test_functional_form_equals_the_algorithm(data_dir):
    trainer = image_trainer_factory(data_dir, lambda: [ChannelsLast()])()
    trainer.fit()
    torch.manual_seed(0)
    model = TinyConvNet()
    reseed()
    apply_channels_last(model)
    train_by_hand(model, cifar_source(data_dir), inputs=to_channels_last)
    assert_same_weights(weights_of(trainer.state.model), weights_of(model))


def test_channels_last_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, lambda: [ChannelsLast()]), tmp_path)


def test_library_resnet_converts_every_conv_and_computes_the_same():
    torch.manual_seed(0)
    model, x = CifarResNet().eval(), torch.randn(2, 3, 32, 32)
    expected = model(x)
    apply_channels_last(model)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=NHWC) for c in convs)
    assert torch.allclose(model(to_channels_last(x)), expected, atol=1e-5)
