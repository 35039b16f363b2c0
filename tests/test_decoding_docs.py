"""decoding: every public name has a numpydoc Examples section, and every docstring example runs."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import decoding


def test_public_api_has_examples():
    missing = [name for name in decoding.__all__
               if (inspect.isfunction(obj := getattr(decoding, name)) or inspect.isclass(obj))
               and "Examples" not in (obj.__doc__ or "")]
    assert not missing, f"public names without an Examples section: {missing}"
    for name in decoding.metrics.__all__:
        assert "Examples" in getattr(decoding.metrics, name).__doc__


def test_public_methods_have_examples():
    missing = []
    for cls in (decoding.Retina, decoding.LinearDecoder, decoding.PointwiseNonlinearity, decoding.Enhancer):
        for name, fn in vars(cls).items():
            if inspect.isfunction(fn) and not name.startswith("_") and name != "forward" and name != "extra_repr":
                if "Examples" not in (fn.__doc__ or ""):
                    missing.append(f"{cls.__name__}.{name}")
    assert not missing, missing


def test_docstring_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failures = []
    modules = [decoding] + [importlib.import_module(i.name) for i in
                            pkgutil.iter_modules(decoding.__path__, prefix="decoding.")]
    for module in modules:
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                                 verbose=False, report=False)
        if result.failed:
            failures.append(f"{module.__name__}: {result.failed} failed")
    assert not failures, failures
