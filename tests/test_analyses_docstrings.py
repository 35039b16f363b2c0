"""Every public name of ``analyses`` documents itself with an Examples section, and the examples run."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import analyses

# The command-line entry point is tested with its own tests (tests/test_cli_errors.py).
SKIP = {"analyses.__main__"}


def test_public_api_has_examples():
    missing = [name for name in analyses.__all__
               if (inspect.isfunction(getattr(analyses, name)) or inspect.isclass(getattr(analyses, name)))
               and "Examples" not in (getattr(analyses, name).__doc__ or "")]
    assert not missing, f"public names without an Examples section: {missing}"


def test_docstring_examples_run(tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LCL_WORKBENCH_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        failures = []
        for info in pkgutil.iter_modules(analyses.__path__, prefix="analyses."):
            if info.name in SKIP:
                continue
            module = importlib.import_module(info.name)
            result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                                     verbose=False, report=False)
            if result.failed:
                failures.append(f"{module.__name__}: {result.failed} failed")
    finally:
        torch.set_num_threads(threads)
    assert not failures, failures
