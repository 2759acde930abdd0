"""Sort PyTorch operations into the classes the profiler reports time, FLOPs and bytes for.

Classes follow what bounds each kind of operation: matrix products and convolutions do many
FLOPs per byte; elementwise math, copies and indexing move bytes; normalizations and
reductions read a tensor and write a smaller one; optimizer math is elementwise but worth
seeing on its own (it is what fused and low-memory optimizers change); communication and
data loading are their own bottlenecks. Names are matched without the ``aten::`` prefix and
the overload, so ``aten::add_`` and ``aten.add.Tensor`` both read as ``add_``.
"""

from __future__ import annotations

import re
from typing import Iterable

MATMUL = "matmul/conv"
ELEMENTWISE = "elementwise"
NORMALIZATION = "normalization"
REDUCTION = "reduction"
OPTIMIZER = "optimizer"
COMMUNICATION = "communication"
DATA = "data"
OP_CLASSES = (MATMUL, ELEMENTWISE, NORMALIZATION, REDUCTION, OPTIMIZER, COMMUNICATION, DATA)

_MATMUL = {
    "mm",
    "addmm",
    "bmm",
    "baddbmm",
    "addbmm",
    "matmul",
    "linear",
    "mv",
    "addmv",
    "dot",
    "vdot",
    "einsum",
    "_scaled_mm",
    "conv1d",
    "conv2d",
    "conv3d",
    "convolution",
    "_convolution",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "convolution_backward",
    "convolution_overrideable",
    "cudnn_convolution",
    "cudnn_convolution_transpose",
    "mkldnn_convolution",
    "_slow_conv2d_forward",
    "_slow_conv2d_backward",
    "slow_conv_transpose2d",
    "thnn_conv2d",
    "_nnpack_spatial_convolution",
    "scaled_dot_product_attention",
    "_scaled_dot_product_attention_math",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_flash_attention_backward",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_cudnn_attention_backward",
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_flash_attention_forward",
    "_flash_attention_backward",
    "_efficient_attention_forward",
    "_efficient_attention_backward",
    "flex_attention",
    "flex_attention_backward",
    "_int_mm",
}
_NORMALIZATION = {
    "batch_norm",
    "native_batch_norm",
    "native_batch_norm_backward",
    "_batch_norm_impl_index",
    "_batch_norm_impl_index_backward",
    "_native_batch_norm_legit",
    "_native_batch_norm_legit_functional",
    "_native_batch_norm_legit_no_training",
    "_batch_norm_with_update",
    "_batch_norm_no_update",
    "batch_norm_backward",
    "cudnn_batch_norm",
    "cudnn_batch_norm_backward",
    "miopen_batch_norm",
    "layer_norm",
    "native_layer_norm",
    "native_layer_norm_backward",
    "group_norm",
    "native_group_norm",
    "native_group_norm_backward",
    "instance_norm",
    "rms_norm",
    "_fused_rms_norm",
    "_fused_rms_norm_backward",
    "local_response_norm",
    "batch_norm_stats",
    "batch_norm_elemt",
    "batch_norm_gather_stats_with_counts",
    "batch_norm_backward_reduce",
    "batch_norm_backward_elemt",
}
_REDUCTION = {
    "sum",
    "mean",
    "nansum",
    "prod",
    "max",
    "min",
    "amax",
    "amin",
    "aminmax",
    "argmax",
    "argmin",
    "all",
    "any",
    "norm",
    "linalg_vector_norm",
    "linalg_norm",
    "frobenius_norm",
    "var",
    "std",
    "var_mean",
    "std_mean",
    "logsumexp",
    "cumsum",
    "cumprod",
    "softmax",
    "_softmax",
    "log_softmax",
    "_log_softmax",
    "_softmax_backward_data",
    "_log_softmax_backward_data",
    "cross_entropy_loss",
    "nll_loss",
    "nll_loss_nd",
    "nll_loss_forward",
    "nll_loss_backward",
    "nll_loss2d_forward",
    "nll_loss2d_backward",
    "mse_loss",
    "mse_loss_backward",
    "l1_loss",
    "smooth_l1_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
    "topk",
    "sort",
    "argsort",
    "median",
    "mode",
    "count_nonzero",
    "bincount",
    "histc",
    "unique",
    "_unique2",
    "max_pool2d",
    "max_pool2d_with_indices",
    "max_pool2d_with_indices_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d",
    "_adaptive_avg_pool2d",
    "_adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "embedding_dense_backward",
}
_COMMUNICATION = re.compile(
    r"^(c10d|_c10d_functional|c10d_functional)::|^record_param_comms|nccl|gloo|"
    r"^(aten::)?_?(all_reduce|allreduce|all_gather|allgather|reduce_scatter|all_to_all|alltoall)",
    re.IGNORECASE,
)
OPTIMIZER_SCOPES = ("Optimizer.step#", "Optimizer.zero_grad#")
DATA_SCOPE = "hasten::data"


def short_name(name: str) -> str:
    """``aten::add_`` / ``aten.add_.Tensor`` / ``add_`` -> ``add_``."""
    if "::" in name:
        name = name.split("::", 1)[1]
    elif name.startswith("aten."):
        name = name[len("aten.") :]
    return name.split(".", 1)[0]


def is_communication(name: str) -> bool:
    return bool(_COMMUNICATION.search(name))


def classify(name: str, scopes: Iterable[str] = ()) -> str:
    """The class of op ``name`` run inside the ``record_function`` scopes ``scopes``.

    Scope wins over name: an ``add_`` inside ``Optimizer.step#AdamW.step`` is optimizer work,
    and anything run while waiting for a batch is data work.
    """
    scopes = tuple(scopes)
    if any(s.startswith(DATA_SCOPE) for s in scopes):
        return DATA
    if is_communication(name):
        return COMMUNICATION
    short = short_name(name)
    if short.startswith("_foreach_") or (short.startswith("_fused_") and not short.startswith("_fused_rms")):
        return OPTIMIZER
    if any(s.startswith(OPTIMIZER_SCOPES) for s in scopes):
        return OPTIMIZER
    if short in _MATMUL or short.startswith("conv") or "attention" in short:
        return MATMUL
    if short in _REDUCTION:
        return REDUCTION
    if short in _NORMALIZATION or short.endswith("_norm") or "_norm_" in short:
        return NORMALIZATION
    return ELEMENTWISE
