"""qk_norm: the functional form equals the CharGPT option, the method trains and refuses other models."""

from __future__ import annotations

from hasten.methods.qk_norm import QKNorm, apply_qk_norm
from tests.methods.gpt_option_checks import check_same_function_as_option, check_trains_and_refuses


def test_functional_form_equals_the_model_option() -> None:
    check_same_function_as_option(apply_qk_norm, {"qk_norm": True})


def test_method_trains_a_gpt_and_refuses_a_convnet(data_dir) -> None:  # type: ignore[no-untyped-def]
    check_trains_and_refuses(data_dir, QKNorm)
