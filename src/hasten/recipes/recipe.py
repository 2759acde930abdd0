"""Recipes as data: a named, versioned YAML file that fixes a workload's settings, its methods
and their parameters, the duration and the precision, so a speedrun is one reusable name.

A recipe file::

    name: shakespeare-speedrun      # lower case, digits, '-', '_'
    version: 1
    workload: shakespeare
    summary: one line
    duration: 400ba
    precision: auto                 # fp32 | bf16 | auto (bf16 only where microbench finds it faster)
    settings: {batch: 32, lr: 0.003}   # the workload's parameters (``hasten workloads``)
    methods:                        # catalogue methods, each NAME or {NAME: {param: value}}
      - muon: {lr: 0.03}
    components:                     # optional: what a leave-one-out ablation removes
      muon: {methods: [muon]}
      shape: {settings: [batch]}
    measured: {result: ..., machine: ...}   # optional: what the recipe reached, and where

Packaged recipes live beside this module; ``load_recipe`` takes a packaged name or a file.
In run stores, sweeps and comparisons a recipe is written ``@NAME`` (or ``@FILE``), and
``@NAME~COMPONENT`` is the recipe with one component removed (its settings back to the
baseline's, its methods dropped).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from hasten.errors import ConfigError

KEYS = (
    "name",
    "version",
    "workload",
    "summary",
    "duration",
    "precision",
    "settings",
    "methods",
    "components",
    "measured",
)
REQUIRED = ("name", "version", "workload")
PRECISIONS = ("fp32", "bf16", "auto")
COMPONENT_KEYS = ("methods", "settings", "precision")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class Recipe:
    name: str
    version: int
    workload: str
    summary: str = ""
    duration: str | None = None
    precision: str = "fp32"
    settings: dict[str, Any] = field(default_factory=dict)
    methods: tuple[tuple[str, dict[str, Any]], ...] = ()
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    removed: str | None = None

    @property
    def label(self) -> str:
        """How runs of this recipe are named in the store."""
        base = f"@{self.name}" if self.source.startswith("package:") else f"@{self.source}"
        return f"{base}~{self.removed}" if self.removed else base

    def method_specs(self) -> list[str]:
        """The methods as CLI specs (``muon:lr=0.03``), the form ``build_methods`` takes."""
        return [
            name + (":" + ",".join(f"{k}={_spec_value(v)}" for k, v in params.items()) if params else "")
            for name, params in self.methods
        ]

    def without(self, component: str) -> Recipe:
        """This recipe with one component removed: its methods dropped, its settings back to
        the workload's baseline values, its precision back to fp32."""
        if component not in self.components:
            accepted = ", ".join(self.components) or "none (the recipe lists no components)"
            raise ConfigError(f"recipe {self.name!r} has no component {component!r}", f"accepted: {accepted}")
        part = self.components[component]
        drop_methods = set(part.get("methods", ()))
        drop_settings = set(part.get("settings", ()))
        return replace(
            self,
            methods=tuple(m for m in self.methods if m[0] not in drop_methods),
            settings={k: v for k, v in self.settings.items() if k not in drop_settings},
            precision="fp32" if part.get("precision") else self.precision,
            removed=component,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "label": self.label,
            "workload": self.workload,
            "summary": self.summary,
            "duration": self.duration,
            "precision": self.precision,
            "settings": dict(self.settings),
            "methods": self.method_specs(),
            "components": list(self.components),
            "measured": dict(self.measured),
            "source": self.source,
        }


def _spec_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "none" if value is None else str(value)


def _packaged() -> dict[str, Any]:
    return {Path(f.name).stem: f for f in resources.files("hasten.recipes").iterdir() if f.name.endswith(".yaml")}


def recipe_names() -> list[str]:
    return sorted(_packaged())


def list_recipes() -> list[Recipe]:
    return [load_recipe(name) for name in recipe_names()]


def load_recipe(name_or_file: str) -> Recipe:
    """A packaged recipe by name, or a YAML file by path; ``X~COMPONENT`` removes a component."""
    ref, _, removed = name_or_file.removeprefix("@").partition("~")
    packaged = _packaged()
    if ref in packaged:
        recipe = parse_recipe(packaged[ref].read_text(), f"package:{ref}")
    elif ref.endswith((".yaml", ".yml")) or Path(ref).is_file():
        path = Path(ref)
        if not path.is_file():
            raise ConfigError(f"recipe file {ref!r} does not exist", "give a packaged recipe name or a YAML file")
        recipe = parse_recipe(path.read_text(), str(path))
    else:
        close = difflib.get_close_matches(ref, packaged, n=2)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"unknown recipe {ref!r}",
            f"{hint}known recipes: {', '.join(sorted(packaged)) or 'none'}, or a path to a .yaml file",
        )
    return recipe.without(removed) if removed else recipe


def parse_recipe(text: str, source: str = "<text>") -> Recipe:
    """Parse and check a recipe's YAML; every problem is one ConfigError naming the accepted values."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {source}: not valid YAML ({str(exc).splitlines()[0]})", "fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {source}: expected a mapping of keys", f"accepted keys: {', '.join(KEYS)}")
    unknown = sorted(set(map(str, data)) - set(KEYS))
    if unknown:
        raise ConfigError(f"recipe {source}: unknown key {', '.join(unknown)}", f"accepted keys: {', '.join(KEYS)}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ConfigError(f"recipe {source}: missing {', '.join(missing)}", f"required keys: {', '.join(REQUIRED)}")
    name = str(data["name"])
    if not _NAME.match(name):
        raise ConfigError(f"recipe {source}: bad name {name!r}", "use lower case letters, digits, '-', '_' and '.'")
    if not isinstance(data["version"], int) or isinstance(data["version"], bool):
        raise ConfigError(f"recipe {source}: version {data['version']!r} is not an integer", "write version: 1")
    precision = str(data.get("precision", "fp32"))
    if precision not in PRECISIONS:
        raise ConfigError(f"recipe {source}: unknown precision {precision!r}", f"accepted: {', '.join(PRECISIONS)}")
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise ConfigError(f"recipe {source}: settings must be a mapping", "write settings: {batch: 32, ...}")
    components = data.get("components") or {}
    if not isinstance(components, dict) or not all(isinstance(v, dict) for v in components.values()):
        raise ConfigError(
            f"recipe {source}: components must map names to {{methods: [...], settings: [...]}}",
            f"accepted keys per component: {', '.join(COMPONENT_KEYS)}",
        )
    for part, body in components.items():
        bad = sorted(set(body) - set(COMPONENT_KEYS))
        if bad:
            raise ConfigError(
                f"recipe {source}: component {part!r} has unknown key {', '.join(bad)}",
                f"accepted: {', '.join(COMPONENT_KEYS)}",
            )
    return Recipe(
        name=name,
        version=data["version"],
        workload=str(data["workload"]),
        summary=str(data.get("summary", "")),
        duration=str(data["duration"]) if data.get("duration") is not None else None,
        precision=precision,
        settings=dict(settings),
        methods=_methods(data.get("methods") or [], source),
        components={str(k): dict(v) for k, v in components.items()},
        measured=dict(data.get("measured") or {}),
        source=source,
    )


def _methods(items: Any, source: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    if not isinstance(items, list):
        raise ConfigError(f"recipe {source}: methods must be a list", "write methods: [muon, {ema: {decay: 0.99}}]")
    out: list[tuple[str, dict[str, Any]]] = []
    for item in items:
        if isinstance(item, str):
            out.append((item, {}))
        elif isinstance(item, dict) and len(item) == 1:
            ((name, params),) = item.items()
            if params is not None and not isinstance(params, dict):
                raise ConfigError(
                    f"recipe {source}: parameters of method {name!r} must be a mapping",
                    f"write - {name}: {{param: value}}",
                )
            out.append((str(name), dict(params or {})))
        else:
            raise ConfigError(f"recipe {source}: bad method entry {item!r}", "write NAME or {NAME: {param: value}}")
    return tuple(out)


def is_recipe_reference(text: str) -> bool:
    """``@NAME``, ``@FILE``, a packaged recipe's name or a ``.yaml`` path: not a method list."""
    text = text.strip()
    return text.startswith("@") or text.partition("~")[0] in _packaged() or text.endswith((".yaml", ".yml"))


def run_arguments(recipe: Recipe | str, workload: str | None = None) -> dict[str, Any]:
    """``build_trainer`` keyword arguments for ``recipe``, checked against ``workload`` (its
    name, when given): the recipe must be for it, its settings must be the workload's
    parameters and its methods must be in the catalogue."""
    from hasten.methods.registry import build_methods
    from hasten.workloads.base import get_workload

    recipe = load_recipe(recipe) if isinstance(recipe, str) else recipe
    if workload is not None and get_workload(workload).name != recipe.workload:
        raise ConfigError(
            f"recipe {recipe.name!r} is for workload {recipe.workload!r}, not {workload!r}",
            f"use 'hasten train {recipe.workload} --recipe {recipe.name}', or a recipe for {workload!r}",
        )
    get_workload(recipe.workload).with_params(recipe.settings)  # unknown or mistyped settings fail here
    specs = recipe.method_specs()
    build_methods(specs)
    return {
        "methods": specs,
        "workload_params": dict(recipe.settings),
        "precision": recipe.precision,
        "recipe": recipe.label,
        "duration": recipe.duration,
    }
