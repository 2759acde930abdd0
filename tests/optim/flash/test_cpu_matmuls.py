"""fp32 matrix products for bf16 models on CPU: same storage dtypes, fp32 arithmetic, no leaked mode."""

import pytest
import torch
import torch.nn.functional as F

from hasten.optim.flash import cast_model
from hasten.optim.flash.cpu_matmuls import Fp32MatrixProducts
from tests.optim.flash.tiny_models import seeded_char_lm


def test_matrix_products_compute_in_fp32_and_return_bf16():
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(8, 64, generator=g).bfloat16(), torch.randn(32, 64, generator=g).bfloat16()
    images, kernel = torch.randn(2, 3, 8, 8, generator=g).bfloat16(), torch.randn(4, 3, 3, 3, generator=g).bfloat16()
    q = torch.randn(1, 2, 8, 16, generator=g).bfloat16()
    expected = {
        "linear": F.linear(x.float(), w.float()),
        "matmul": x.float() @ w.float().t(),
        "conv": F.conv2d(images.float(), kernel.float()),
        "attention": F.scaled_dot_product_attention(q.float(), q.float(), q.float()),
    }
    with Fp32MatrixProducts():
        got = {
            "linear": F.linear(x, w),
            "matmul": x @ w.t(),
            "conv": F.conv2d(images, kernel),
            "attention": F.scaled_dot_product_attention(q, q, q),
        }
    for name, value in got.items():
        assert value.dtype == torch.bfloat16, name
        assert torch.equal(value, expected[name].bfloat16()), name  # fp32 arithmetic, one final rounding


def test_cast_model_trains_with_bf16_storage_and_leaves_no_mode_behind():
    model = cast_model(seeded_char_lm(65))
    ids = torch.randint(0, 65, (2, 16))
    model(ids).float().sum().backward()
    assert all(p.grad.dtype == torch.bfloat16 for p in model.parameters())
    assert torch._C._len_torch_function_stack() == 0
    with pytest.raises(RuntimeError):
        model(torch.randint(0, 65, (2, 99)))  # longer than the 32 learned positions: the forward raises
    assert torch._C._len_torch_function_stack() == 0  # the mode was still exited


def test_the_option_can_be_turned_off():
    plain = cast_model(seeded_char_lm(65), cpu_fp32_matmuls=False)
    fast = cast_model(seeded_char_lm(65))
    ids = torch.randint(0, 65, (2, 16))
    assert plain(ids).dtype == fast(ids).dtype == torch.float32
