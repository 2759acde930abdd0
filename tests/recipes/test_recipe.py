"""Recipes as data: parsing, bad input (one ConfigError naming the accepted values), the
packaged recipes, components removed for ablations, and the build_trainer arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from hasten.errors import ConfigError
from hasten.recipes.recipe import (
    is_recipe_reference,
    list_recipes,
    load_recipe,
    parse_recipe,
    recipe_names,
    run_arguments,
)

GOOD = """
name: tiny
version: 2
workload: shakespeare
duration: 10ba
precision: bf16
settings: {batch: 4, layers: 2, position: rotary}
methods:
  - muon: {lr: 0.03, nesterov: false}
  - label_smoothing
components:
  muon: {methods: [muon]}
  shape: {settings: [batch, layers]}
  bf16: {precision: true}
"""


def test_parse_gives_methods_as_specs_settings_and_label(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(GOOD)
    recipe = load_recipe(str(path))
    assert recipe.name == "tiny" and recipe.version == 2 and recipe.precision == "bf16"
    assert recipe.method_specs() == ["muon:lr=0.03,nesterov=false", "label_smoothing"]
    assert recipe.label == f"@{path}"
    args = run_arguments(recipe, "shakespeare")
    assert args["methods"] == recipe.method_specs() and args["workload_params"]["batch"] == 4
    assert args["duration"] == "10ba" and args["precision"] == "bf16" and args["recipe"] == f"@{path}"


def test_without_a_component_resets_its_settings_methods_and_precision() -> None:
    recipe = parse_recipe(GOOD)
    no_muon = recipe.without("muon")
    assert no_muon.method_specs() == ["label_smoothing"] and no_muon.settings == recipe.settings
    no_shape = recipe.without("shape")
    assert no_shape.settings == {"position": "rotary"} and no_shape.methods == recipe.methods
    assert recipe.without("bf16").precision == "fp32"
    assert no_muon.label.endswith("~muon")
    with pytest.raises(ConfigError, match="no component 'nope'.*accepted: muon, shape, bf16"):
        recipe.without("nope")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nversion: 1\nworkload: shakespeare\nbatch: 3\n", "unknown key batch.*accepted keys: name"),
        ("name: x\nworkload: shakespeare\n", "missing version"),
        ("name: x\nversion: one\nworkload: shakespeare\n", "not an integer"),
        ("name: X Y\nversion: 1\nworkload: shakespeare\n", "bad name"),
        ("name: x\nversion: 1\nworkload: shakespeare\nprecision: fp8\n", "unknown precision 'fp8'.*fp32, bf16, auto"),
        ("name: x\nversion: 1\nworkload: shakespeare\nmethods: muon\n", "methods must be a list"),
        ("name: x\nversion: 1\nworkload: shakespeare\ncomponents: {a: {method: [x]}}\n", "unknown key method"),
        ("- a\n- b\n", "expected a mapping"),
        ("name: [\n", "not valid YAML"),
    ],
)
def test_malformed_recipe_files_are_one_line_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_recipe(text)
    assert "\n" not in str(info.value)


def test_unknown_method_setting_or_workload_fails_before_training() -> None:
    unknown_method = parse_recipe("name: x\nversion: 1\nworkload: shakespeare\nmethods: [warp_drive]\n")
    with pytest.raises(ConfigError, match="unknown method 'warp_drive'"):
        run_arguments(unknown_method, "shakespeare")
    unknown_setting = parse_recipe("name: x\nversion: 1\nworkload: shakespeare\nsettings: {depth: 3}\n")
    with pytest.raises(ConfigError, match="no setting depth.*accepted: .*layers"):
        run_arguments(unknown_setting, "shakespeare")
    mistyped = parse_recipe("name: x\nversion: 1\nworkload: shakespeare\nsettings: {layers: two}\n")
    with pytest.raises(ConfigError, match="layers='two' is not int"):
        run_arguments(mistyped, "shakespeare")
    with pytest.raises(ConfigError, match="is for workload 'shakespeare', not 'mnist'"):
        run_arguments(parse_recipe(GOOD), "mnist")


def test_unknown_recipe_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown recipe 'shakespeare-speedrn'.*did you mean shakespeare-speedrun"):
        load_recipe("shakespeare-speedrn")
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe("missing.yaml")


def test_packaged_recipes_load_and_check_against_their_workload() -> None:
    assert "shakespeare-speedrun" in recipe_names()
    for recipe in list_recipes():
        args = run_arguments(recipe, recipe.workload)
        assert args["recipe"] == f"@{recipe.name}" and recipe.duration
        for component in recipe.components:
            run_arguments(recipe.without(component), recipe.workload)
    assert load_recipe("@shakespeare-speedrun~muon").label == "@shakespeare-speedrun~muon"


def test_references_are_told_apart_from_method_lists() -> None:
    assert is_recipe_reference("@x") and is_recipe_reference("shakespeare-speedrun")
    assert is_recipe_reference("shakespeare-speedrun~muon") and is_recipe_reference("my.yaml")
    assert not is_recipe_reference("muon+label_smoothing") and not is_recipe_reference("baseline")


def test_settings_reach_the_built_run(data_dir: Path) -> None:
    from hasten.workloads.runner import build_trainer

    trainer = build_trainer(
        "shakespeare",
        duration="2ba",
        device="cpu",
        data_dir=data_dir,
        workload_params={"batch": 5, "layers": 1, "tied_head": False},
        recipe="@x",
    )
    assert trainer.state.run_info["recipe"] == "@x"
    assert trainer.state.run_info["config"]["settings"] == {"batch": 5, "layers": 1, "tied_head": False}
    assert len(trainer.state.model.blocks) == 1
