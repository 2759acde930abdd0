"""The one registry: explicit module lists, one error for unknown names, no accidental entries."""

import pkgutil
import re
from pathlib import Path

import pytest

import hasten.methods as methods_package
import hasten.workloads as workloads_package
from hasten.core.algorithm import Algorithm
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard
from hasten.methods.registry import METHODS, register
from hasten.registry import Registry
from hasten.workloads.base import WORKLOADS


def _registering_modules(package, pattern: str) -> set[str]:
    folder = Path(package.__file__).parent
    return {
        info.name
        for info in pkgutil.iter_modules([str(folder)])
        if re.search(pattern, (folder / f"{info.name}.py").read_text(), re.MULTILINE)
    }


def test_every_method_module_that_registers_is_listed_and_every_listed_one_registers():
    registering = _registering_modules(methods_package, r"^register\(|^@register\(")
    assert registering == set(methods_package.MODULES)
    modules = {entry.algorithm.__module__.rsplit(".", 1)[1] for entry in METHODS.entries()}
    assert modules == set(methods_package.MODULES)


def test_every_workload_module_is_listed():
    assert _registering_modules(workloads_package, r"^@register_workload") == set(workloads_package.MODULES)
    assert [w.name for w in WORKLOADS.entries()] == sorted(w.name for w in WORKLOADS.entries())


def test_unknown_names_are_one_config_error_with_suggestions():
    with pytest.raises(ConfigError, match="unknown method 'mixupp'") as caught:
        METHODS.get("mixupp")
    assert "did you mean mixup" in caught.value.hint
    with pytest.raises(ConfigError, match="unknown workload 'toys'") as caught:
        WORKLOADS.get("toys")
    assert "known workloads: " + ", ".join(w.name for w in WORKLOADS.entries()) in caught.value.hint
    assert "mnist" in caught.value.hint


def test_a_name_registered_twice_with_a_different_entry_is_refused():
    registry: Registry[object] = Registry("thing", "hasten.workloads", lambda close, names: "")
    first = object()
    registry.add("a", first)
    registry.add("a", first)  # re-import: fine
    with pytest.raises(ValueError, match="thing 'a' is registered twice"):
        registry.add("a", object())


def test_register_also_works_as_a_class_decorator():
    card = MethodCard(
        name="decorated_probe",
        summary="test only",
        component="data",
        action="remove",
        mechanism="step-cost",
        bottleneck=("data",),
    )

    @register(card)
    class DecoratedProbe(Algorithm):
        name = "decorated_probe"

        def __init__(self, strength: float = 0.5) -> None:
            self.strength = strength

        def match(self, event, state):  # type: ignore[no-untyped-def]
            return False

        def apply(self, event, state):  # type: ignore[no-untyped-def]
            pass

    try:
        entry = METHODS.get("decorated_probe")
        assert entry.algorithm is DecoratedProbe and entry.card.defaults == {"strength": 0.5}
    finally:
        METHODS._entries.pop("decorated_probe")
