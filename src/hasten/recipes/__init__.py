"""Named, versioned recipes (YAML files shipped with the package): a workload's settings,
methods, duration and precision under one name. See ``hasten.recipes.recipe``."""

from hasten.recipes.recipe import (
    Recipe,
    list_recipes,
    load_recipe,
    parse_recipe,
    recipe_names,
)

__all__ = ["Recipe", "list_recipes", "load_recipe", "parse_recipe", "recipe_names"]
