"""Speedup methods: one module per method (functional form, Algorithm, card) and a registry.

Method modules register themselves on import; the registry imports them all on first use.
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

__all__ = [
    "ACTIONS",
    "BOTTLENECKS",
    "COMPONENTS",
    "MECHANISMS",
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
