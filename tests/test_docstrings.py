"""Every public name documents itself with a numpydoc Examples section, and those examples run."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

PACKAGES = ["data", "geometry", "lcl", "decoding", "analyses"]
# lcl, decoding and analyses run their own examples (tests/test_*_doc*.py) with package-specific fixtures
DOCTEST_PACKAGES = ["data", "geometry"]


def _public(package: str):
    mod = importlib.import_module(package)
    for name in mod.__all__:
        yield f"{package}.{name}", getattr(mod, name)


@pytest.mark.parametrize("package", PACKAGES)
def test_public_api_has_examples(package):
    missing = [qual for qual, obj in _public(package)
               if (inspect.isfunction(obj) or inspect.isclass(obj)) and "Examples" not in (obj.__doc__ or "")]
    assert not missing, f"public names without an Examples section: {missing}"


def _modules(package: str):
    pkg = importlib.import_module(package)
    yield pkg
    for info in pkgutil.iter_modules(pkg.__path__, prefix=f"{package}."):
        if not info.name.endswith("__main__"):
            yield importlib.import_module(info.name)


@pytest.mark.parametrize("package", DOCTEST_PACKAGES)
def test_docstring_examples_run(package, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failures = []
    for module in _modules(package):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                                 verbose=False, report=False)
        if result.failed:
            failures.append(f"{module.__name__}: {result.failed} failed")
    assert not failures, failures
