"""The method registry: find methods by name and build them from CLI specs like ``mixup:alpha=0.2``."""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, overload

from hasten.core.algorithm import Algorithm
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard
from hasten.registry import Registry


@dataclass(frozen=True)
class MethodEntry:
    card: MethodCard
    algorithm: type[Algorithm]

    @property
    def name(self) -> str:
        return self.card.name

    def build(self, **params: Any) -> Algorithm:
        return self.algorithm(**params)


def _unknown_hint(close: list[str], names: list[str]) -> str:
    return f"did you mean {', '.join(close)}?" if close else "see 'hasten methods' for the catalogue"


METHODS: Registry[MethodEntry] = Registry("method", "hasten.methods", _unknown_hint)


@overload
def register(card: MethodCard, algorithm: type[Algorithm]) -> type[Algorithm]: ...
@overload
def register(card: MethodCard) -> Callable[[type[Algorithm]], type[Algorithm]]: ...
def register(card: MethodCard, algorithm: type[Algorithm] | None = None) -> Any:
    """Add a method, as ``register(card, MyMethod)`` or as the class decorator ``@register(card)``.

    Call it in the method's own module, and list that module in ``hasten.methods.MODULES``.
    The card's ``touches``/``conflicts``/``resume``/``defaults`` are filled from the
    Algorithm class and its constructor, so they cannot drift apart."""
    if algorithm is None:
        return lambda cls: register(card, cls)
    if algorithm.name != card.name:
        raise ValueError(f"card {card.name!r} registers algorithm named {algorithm.name!r}")
    api_only = set(getattr(algorithm, "api_only", ()))  # Python-only arguments (callables): not on the CLI
    defaults = {
        p.name: p.default
        for p in inspect.signature(algorithm.__init__).parameters.values()
        if p.name != "self"
        and p.name not in api_only
        and p.default is not p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    card = dataclasses.replace(
        card,
        touches=tuple(sorted(algorithm.touches)),
        conflicts=dict(algorithm.conflicts),
        resume=algorithm.resumable,
        data_parallel=algorithm.data_parallel,
        data_parallel_note=algorithm.data_parallel_note,
        defaults={**defaults, **card.defaults},
    )
    METHODS.add(card.name, MethodEntry(card, algorithm), same=lambda old, new: old.algorithm is new.algorithm)
    return algorithm


def all_methods() -> list[MethodEntry]:
    return sorted(METHODS.entries(), key=lambda e: (e.card.component, e.card.name))


def method_names() -> list[str]:
    return METHODS.names()


def get_method(name: str) -> MethodEntry:
    return METHODS.get(name)


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"mixup:alpha=0.2,interpolate_loss=true"`` -> ``("mixup", {"alpha": "0.2", ...})``."""
    name, _, rest = spec.strip().partition(":")
    if not name:
        raise ConfigError(f"malformed method {spec!r}", "write NAME or NAME:key=value,key=value")
    params: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(
                f"malformed parameter {item!r} in method {spec!r}", "write key=value, e.g. mixup:alpha=0.2"
            )
        if key.strip() in params:
            raise ConfigError(
                f"parameter {key.strip()!r} is given twice in method {spec!r}", "give each parameter once"
            )
        params[key.strip()] = value.strip()
    return name.strip(), params


def _coerce(method: str, key: str, raw: str, default: Any) -> Any:
    def fail(kind: str) -> ConfigError:
        return ConfigError(f"method {method!r}: {key}={raw!r} is not {kind}", f"give {key} as {kind}")

    if isinstance(default, bool):
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise fail("a boolean (true/false)")
    if isinstance(default, int):
        try:
            value = float(raw)
        except ValueError:
            raise fail("an integer") from None
        if not value.is_integer():
            raise fail("an integer")
        return int(value)
    if isinstance(default, float):
        try:
            number = float(raw)
        except ValueError:
            raise fail("a number") from None
        if not math.isfinite(number):  # NaN passes every range check a method makes ('alpha <= 0' is False)
            raise fail("a finite number")
        return number
    if default is None:
        for convert in (int, float):
            try:
                value = convert(raw)
            except ValueError:
                continue
            if not math.isfinite(value):
                raise fail("a finite number")
            return value
        if raw.lower() in ("none", "null"):
            return None
    return raw


def build_method(spec: str) -> Algorithm:
    """Build an Algorithm from ``NAME[:k=v,...]``, with values typed from the defaults."""
    name, raw = parse_spec(spec)
    entry = get_method(name)
    defaults = entry.card.defaults
    unknown = set(raw) - set(defaults)
    if unknown:
        accepted = ", ".join(sorted(defaults)) or "none"
        raise ConfigError(f"method {name!r} has no parameter {', '.join(sorted(unknown))}", f"accepted: {accepted}")
    params = {k: _coerce(name, k, v, defaults[k]) for k, v in raw.items()}
    try:
        return entry.build(**params)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"method {name!r}: {exc}", f"check the parameter values in 'hasten methods {name}'") from exc


def build_methods(specs: list[str] | tuple[str, ...]) -> list[Algorithm]:
    return [build_method(s) for s in specs]


def recipe_name(specs: list[str] | tuple[str, ...]) -> str:
    """The recipe's name as stored: the specs joined by '+', or 'baseline'."""
    return "+".join(s.strip() for s in specs) or "baseline"


def split_recipe(recipe: str) -> list[str]:
    """Inverse of ``recipe_name``: 'mixup:alpha=0.2+label_smoothing' -> two specs."""
    recipe = recipe.strip()
    if recipe in ("", "baseline"):
        return []
    return [part for part in (p.strip() for p in recipe.split("+")) if part and part != "baseline"]
