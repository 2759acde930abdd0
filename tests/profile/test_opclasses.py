from __future__ import annotations

import pytest

from hasten.profile.opclasses import (
    COMMUNICATION,
    DATA,
    ELEMENTWISE,
    MATMUL,
    NORMALIZATION,
    OPTIMIZER,
    REDUCTION,
    classify,
    short_name,
)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("aten::addmm", MATMUL),
        ("aten::convolution_backward", MATMUL),
        ("aten::_scaled_dot_product_flash_attention_for_cpu", MATMUL),
        ("aten::native_layer_norm", NORMALIZATION),
        ("aten::native_batch_norm_backward", NORMALIZATION),
        ("aten::_log_softmax", REDUCTION),
        ("aten::linalg_vector_norm", REDUCTION),
        ("aten::sum", REDUCTION),
        ("aten::add", ELEMENTWISE),
        ("aten::copy_", ELEMENTWISE),
        ("aten::broadcast_tensors", ELEMENTWISE),
        ("aten::all", REDUCTION),
        ("aten::_foreach_mul_", OPTIMIZER),
        ("aten::_fused_adamw_", OPTIMIZER),
        ("c10d::allreduce_", COMMUNICATION),
        ("_c10d_functional::all_gather_into_tensor", COMMUNICATION),
        ("ncclDevKernel_AllReduce_Sum_f32_RING_LL", COMMUNICATION),
    ],
)
def test_names_map_to_their_class(name, expected):
    assert classify(name) == expected


def test_scope_wins_over_name():
    assert classify("aten::add_", ["Optimizer.step#AdamW.step"]) == OPTIMIZER
    assert classify("aten::mm", ["hasten::data"]) == DATA
    assert classify("aten::add_", ["autograd::engine::evaluate_function: AddBackward0"]) == ELEMENTWISE


def test_short_name_strips_namespace_and_overload():
    assert short_name("aten::add_") == "add_"
    assert short_name("aten.add.Tensor") == "add"
    assert short_name("mm") == "mm"
