"""rotary_embeddings: the functional form equals the CharGPT option, the method trains and refuses other models."""

from __future__ import annotations

from hasten.methods.rotary_embeddings import RotaryEmbeddings, apply_rotary_embeddings
from tests.methods.gpt_option_checks import check_same_function_as_option, check_trains_and_refuses


def test_functional_form_equals_the_model_option() -> None:
    check_same_function_as_option(apply_rotary_embeddings, {"position": "rotary"})


def test_method_trains_a_gpt_and_refuses_a_convnet(data_dir) -> None:  # type: ignore[no-untyped-def]
    check_trains_and_refuses(data_dir, RotaryEmbeddings)


def test_rotary_drops_the_learned_position_table() -> None:
    from tests.methods.gpt_option_checks import small_gpt

    model = small_gpt()
    apply_rotary_embeddings(model)
    assert model.position_embedding is None and model.config.position == "rotary"
    assert "position_embedding.weight" not in dict(model.named_parameters())
