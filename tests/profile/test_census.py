from __future__ import annotations

import pytest
import torch
from torch import nn

from hasten.profile.census import CensusRecorder, OpCensus, tensor_bytes
from hasten.profile.opclasses import MATMUL, OPTIMIZER


def _step(model, opt, x, y):
    opt.zero_grad()
    nn.functional.mse_loss(model(x), y).backward()
    opt.step()


def test_counts_matmul_flops_forward_and_backward():
    model = nn.Linear(64, 32, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 64), torch.randn(16, 32)
    with CensusRecorder() as rec:
        _step(model, opt, x, y)
    census = rec.result
    assert census.error is None
    # forward x@W^T and the weight gradient; x needs no gradient, so no input-gradient product
    assert census.total_flops == 2 * (2 * 16 * 64 * 32)
    matmul = sum(op.flops for op in census.ops.values() if op.op_class == MATMUL)
    assert matmul == census.total_flops
    assert census.matmul_dtype() == "float32"


def test_bytes_are_inputs_read_plus_outputs_written_and_views_are_free():
    a, b = torch.randn(1000), torch.randn(1000)
    census = OpCensus()
    with census:
        c = a + b
        c.view(10, 100)
    add = census.ops[("elementwise", "aten::add")]
    assert add.calls == 1 and add.bytes == 3 * 1000 * 4
    assert add.est_flops == 1000  # one estimated FLOP per output element of a pointwise op
    view = census.ops[("elementwise", "aten::view")]
    assert view.view and view.bytes == 0


def test_broadcast_input_counts_its_storage_not_its_expanded_size():
    t = torch.randn(1, 64).expand(1000, 64)
    assert tensor_bytes(t) == 64 * 4
    assert tensor_bytes(torch.randn(10, 10)) == 400


def test_optimizer_ops_are_classified_by_the_optimizer_scope():
    model = nn.Linear(8, 8)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, foreach=False)
    x = torch.randn(4, 8)
    _step(model, opt, x, x)
    with CensusRecorder() as rec:
        _step(model, opt, x, x)
    classes = {op.op_class for op in rec.result.ops.values()}
    assert OPTIMIZER in classes
    optimizer_ops = [op for op in rec.result.ops.values() if op.op_class == OPTIMIZER]
    assert sum(op.bytes for op in optimizer_ops) > 0


def test_a_failing_step_leaves_the_error_on_the_result():
    rec = CensusRecorder()
    with pytest.raises(RuntimeError):
        with rec:
            torch.randn(2, 3) @ torch.randn(4, 5)
    assert rec.result is not None and "RuntimeError" in rec.result.error


def test_bf16_matmuls_report_their_dtype():
    a, b = torch.randn(32, 32, dtype=torch.bfloat16), torch.randn(32, 32, dtype=torch.bfloat16)
    with CensusRecorder() as rec:
        a @ b
    assert rec.result.matmul_dtype() == "bfloat16"


def test_cpu_attention_flops_are_estimated_from_shapes_when_not_counted():
    q, k, v = (torch.randn(2, 4, 64, 16, requires_grad=True) for _ in range(3))
    with CensusRecorder() as rec:
        torch.nn.functional.scaled_dot_product_attention(q, k, v).sum().backward()
    attention = [op for op in rec.result.ops.values() if "attention" in op.name]
    assert attention, "expected an attention kernel in the census"
    if rec.result.total_flops == 0:  # the CPU flash kernels have no formula in FlopCounterMode
        forward = next(op for op in attention if not op.name.endswith("backward"))
        assert forward.flops == 0 and forward.est_flops == 4 * 2 * 4 * 64 * 64 * 16
        assert forward.intensity > 0
