"""cast_model: bf16 parameters, fp32 norms with running statistics, dtype-safe boundaries."""

import pytest
import torch
from torch import nn

from hasten.errors import ConfigError
from hasten.optim.flash import cast_model, model_dtype
from tests.harness import TinyConvNet, cifar_slice, normalize_images
from tests.optim.flash.tiny_models import TinyCharLM


def test_batch_norm_stays_fp32_and_everything_else_is_bf16():
    model = cast_model(TinyConvNet())
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            assert module.weight.dtype == torch.float32 and module.running_mean.dtype == torch.float32, name
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            assert module.weight.dtype == torch.bfloat16, name
    assert model_dtype(model) == torch.bfloat16


def test_cast_model_runs_real_images_and_tracks_the_fp32_model(data_dir):
    torch.manual_seed(0)
    reference = TinyConvNet()
    cast = cast_model(TinyConvNet())
    cast.load_state_dict(reference.state_dict())
    images, _ = cifar_slice(str(data_dir), 256)
    inputs = normalize_images(images[:64])  # fp32 input: the model casts it
    out_ref, out_cast = reference(inputs), cast(inputs)
    assert out_cast.dtype == torch.float32  # losses and metrics see fp32 logits
    assert torch.allclose(out_cast, out_ref, atol=0.05 * out_ref.abs().max().item())
    out_cast.sum().backward()  # gradients flow through the fp32 norm layers
    assert cast.stem[0].weight.grad.dtype == torch.bfloat16
    assert cast.stem[1].weight.grad.dtype == torch.float32


def test_keep_fp32_patterns_match_dotted_names():
    model = cast_model(TinyCharLM(65), keep_fp32=["head", "blocks.*.norm1"])
    assert model.head.weight.dtype == torch.float32
    assert model.blocks[0].norm1.weight.dtype == torch.float32 and model.blocks[1].norm1.weight.dtype == torch.float32
    assert model.blocks[0].norm2.weight.dtype == torch.bfloat16
    ids = torch.randint(0, 65, (2, 16))  # integer token ids pass through untouched
    assert model(ids).dtype == torch.float32


def test_casting_twice_is_a_no_op_and_changing_dtype_is_refused():
    model = cast_model(TinyConvNet())
    hooks = len(model._forward_pre_hooks)
    assert cast_model(model) is model and len(model._forward_pre_hooks) == hooks
    with pytest.raises(ConfigError, match="already cast"):
        cast_model(model, torch.float16)
    with pytest.raises(ConfigError, match="bfloat16 or float16"):
        cast_model(TinyConvNet(), torch.float64)
