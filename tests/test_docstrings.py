"""Every public name documents itself with a numpydoc Examples section, and every docstring example runs.

The one doctest runner of the suite: each module of the five packages is one test (``__main__`` modules excepted:
the command lines are tested in tests/test_cli_errors.py and with the jobs they run).
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

PACKAGES = ["data", "geometry", "lcl", "decoding", "analyses"]
# public submodules whose names are part of the API too
SUBMODULES = ["lcl.losses", "decoding.metrics"]


def _public(module_name: str):
    mod = importlib.import_module(module_name)
    for name in mod.__all__:
        yield f"{module_name}.{name}", getattr(mod, name)


def _module_names() -> list[str]:
    names = []
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        names.append(package)
        names += [i.name for i in pkgutil.iter_modules(pkg.__path__, prefix=f"{package}.")
                  if not i.name.endswith("__main__")]
    return names


@pytest.mark.parametrize("module_name", PACKAGES + SUBMODULES)
def test_public_api_has_examples(module_name):
    missing = [qual for qual, obj in _public(module_name)
               if (inspect.isfunction(obj) or inspect.isclass(obj)) and "Examples" not in (obj.__doc__ or "")]
    assert not missing, f"public names without an Examples section: {missing}"


# classes whose methods a user calls directly (fitted estimators, simulators, the config convention)
METHOD_CLASSES = ["data.Config", "decoding.Retina", "decoding.LinearDecoder", "decoding.PointwiseNonlinearity",
                  "decoding.Enhancer"]


@pytest.mark.parametrize("qual", METHOD_CLASSES)
def test_public_methods_have_examples(qual):
    module, name = qual.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    missing = [f"{qual}.{n}" for n, fn in vars(cls).items()
               if (inspect.isfunction(fn) or isinstance(fn, classmethod)) and not n.startswith("_")
               and n not in ("forward", "extra_repr") and "Examples" not in (inspect.getdoc(getattr(cls, n)) or "")]
    assert not missing, f"public methods without an Examples section: {missing}"


@pytest.mark.parametrize("module_name", _module_names())
def test_docstring_examples_run(module_name, tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LCL_WORKBENCH_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # examples are tiny; one thread keeps them fast on a loaded machine
    try:
        module = importlib.import_module(module_name)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                                 verbose=False, report=True)
    finally:
        torch.set_num_threads(threads)
    assert result.failed == 0, f"{module_name}: {result.failed} of {result.attempted} examples failed"
