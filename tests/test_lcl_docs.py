"""lcl documents every public name with a numpydoc Examples section, and the examples run."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import lcl


def test_public_api_has_examples():
    missing = [name for name in lcl.__all__
               if (inspect.isfunction(getattr(lcl, name)) or inspect.isclass(getattr(lcl, name)))
               and "Examples" not in (getattr(lcl, name).__doc__ or "")]
    assert not missing, f"public names without an Examples section: {missing}"
    public_losses = [getattr(lcl.losses, n) for n in lcl.losses.__all__ if callable(getattr(lcl.losses, n))]
    assert all("Examples" in (f.__doc__ or "") for f in public_losses)


def test_docstring_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failures = []
    modules = [lcl] + [importlib.import_module(i.name) for i in pkgutil.iter_modules(lcl.__path__, prefix="lcl.")
                       if not i.name.endswith("__main__")]
    for module in modules:
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                                 verbose=False, report=False)
        if result.failed:
            failures.append(f"{module.__name__}: {result.failed} failed")
    assert not failures, failures
