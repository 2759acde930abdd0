"""Speedup methods: one module per method (functional form, Algorithm, card) and a registry.

Each module in ``MODULES`` registers its method on import (``register(card, Algorithm)``);
the registry imports exactly these on first use. To add a method: write its module, register
in it, add its name here. Other modules here (``card``, ``surgery``...) are helpers.
"""

from hasten.methods.card import ACTIONS, BOTTLENECKS, COMPONENTS, MECHANISMS, MethodCard, Paper
from hasten.methods.registry import (
    MethodEntry,
    all_methods,
    build_method,
    build_methods,
    get_method,
    method_names,
    parse_spec,
    recipe_name,
    register,
    split_recipe,
)

MODULES: tuple[str, ...] = (
    "alternating_flip",
    "blurpool",
    "channels_last",
    "colout",
    "compile",
    "cutmix",
    "data_echoing",
    "ema",
    "flashoptim",
    "gated_linear_units",
    "gradient_clipping",
    "label_smoothing",
    "layer_freezing",
    "lookahead",
    "low_precision_norm",
    "masking_schedule",
    "mixup",
    "muon",
    "patch_whitening",
    "precision",
    "progressive_resizing",
    "qk_norm",
    "relu_squared",
    "rotary_embeddings",
    "sam",
    "scale_schedule",
    "selective_backprop",
    "seq_length_warmup",
    "squeeze_excite",
    "stochastic_depth",
    "swa",
    "tta",
    "unit_scaling",
    "untied_head",
    "zero_init_projections",
)

__all__ = [
    "ACTIONS",
    "BOTTLENECKS",
    "COMPONENTS",
    "MECHANISMS",
    "MODULES",
    "MethodCard",
    "MethodEntry",
    "Paper",
    "all_methods",
    "build_method",
    "build_methods",
    "get_method",
    "method_names",
    "parse_spec",
    "recipe_name",
    "register",
    "split_recipe",
]
