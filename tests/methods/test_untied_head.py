"""untied_head: the functional form equals the CharGPT option, the method trains and refuses other models."""

from __future__ import annotations

from hasten.methods.untied_head import UntiedHead, untie_head
from tests.methods.gpt_option_checks import check_same_function_as_option, check_trains_and_refuses


def test_functional_form_equals_the_model_option() -> None:
    check_same_function_as_option(untie_head, {"tied_head": False})


def test_method_trains_a_gpt_and_refuses_a_convnet(data_dir) -> None:  # type: ignore[no-untyped-def]
    check_trains_and_refuses(data_dir, UntiedHead)


def test_untied_head_is_its_own_parameter_and_zero_init_option() -> None:
    import pytest

    from tests.methods.gpt_option_checks import small_gpt

    model = small_gpt()
    assert untie_head(model, "zero") == 1
    assert (
        model.lm_head.weight is not model.token_embedding.weight
        and float(model.lm_head.weight.detach().abs().sum()) == 0
    )
    assert untie_head(model) == 0  # nothing tied any more
    with pytest.raises(ValueError):
        UntiedHead(init="random")
