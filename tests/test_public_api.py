"""``import hasten`` exposes the public API lazily."""

import subprocess
import sys

import hasten


def test_every_exported_name_resolves_to_its_defining_module():
    for name, module in hasten._EXPORTS.items():
        value = getattr(hasten, name)
        assert value.__module__.startswith(module), (name, value.__module__)
    assert set(hasten._EXPORTS) <= set(dir(hasten))


def test_import_hasten_imports_no_submodule_and_not_torch():
    code = "import sys, hasten; print(sorted(m for m in sys.modules if m.startswith(('hasten.', 'torch'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_unknown_name_is_an_attribute_error():
    try:
        hasten.Trainr  # noqa: B018
    except AttributeError as exc:
        assert "Trainr" in str(exc)
    else:
        raise AssertionError("hasten.Trainr resolved")


def test_all_lists_exactly_the_exports():
    assert set(hasten.__all__) == {"__version__", *hasten._EXPORTS}
