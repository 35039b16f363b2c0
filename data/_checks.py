"""Argument checks shared by every public function of the workbench (private; imported as ``data._checks``).

Each check takes the argument's name and value and either returns the value (normalised: a Python ``int``,
``float``, ``bool``, ``pathlib.Path`` or numpy array) or raises, before any work, ``TypeError`` (wrong type: a
string for a number, a bool for an integer, a complex number, ``None`` where it is not allowed) or ``ValueError``
(right type, wrong value: NaN, inf, out of range, a size whose arrays would not fit in memory), with a message
that starts with the argument's name, e.g. ``"batch_size must be an integer >= 1, got -1"``.

Wrong types raise :class:`ArgumentTypeError`, a subclass of both ``TypeError`` and ``ValueError``: several of the
earlier hand-written checks raised ``ValueError`` for a wrong type (``n_t=2.5``, ``kappa="a"``), and code that
catches that keeps working.

Memory bound: :func:`check_nbytes` refuses work whose largest arrays would exceed :func:`memory_limit` bytes,
8 GiB by default; the environment variable ``LCL_WORKBENCH_MAX_GB`` (a positive number of GiB) changes it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

__all__: list[str] = []

#: Default bound on the memory one call may plan to allocate (bytes); see :func:`memory_limit`.
DEFAULT_MEMORY_LIMIT = 8 * 2 ** 30
#: Largest seed accepted (numpy and torch both take any integer in [0, 2**63 - 1]).
MAX_SEED = 2 ** 63 - 1


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a ``TypeError``; also a ``ValueError`` for callers of the earlier checks)."""


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None,
              none: bool = False) -> int | None:
    """``value`` as a Python int, checked to be an integer (not a bool, float or string) in ``[low, high]``.

    ``None`` passes (and is returned) when ``none`` is true.
    """
    if value is None and none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise ArgumentTypeError(f"{name} must be an integer, got {_describe(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None and low == 1:
            want = "a positive integer"
        elif high is None and low == 0:
            want = "a non-negative integer"
        elif high is None:
            want = f"an integer >= {low}"
        elif low is None:
            want = f"an integer <= {high}"
        else:
            want = f"an integer in [{low}, {high}]"
        raise ValueError(f"{name} must be {want}, got {value}")
    return value


def check_seed(name: str, value: Any, *, none: bool = False, high: int = MAX_SEED) -> int | None:
    """A seed: an integer in ``[0, high]``, by default ``[0, 2**63 - 1]`` (``None`` passes when ``none`` is true).
    Seeds handed to scikit-learn (numpy's legacy ``RandomState``) need ``high=2**32 - 1``."""
    return check_int(name, value, low=0, high=high, none=none)


def check_float(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, finite: bool = True,
                none: bool = False) -> float | None:
    """``value`` as a Python float, checked to be a real number (not a bool, string or complex), not NaN,
    finite unless ``finite`` is false, and within ``low``/``high`` (open ends with ``low_open``/``high_open``).
    """
    if value is None and none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise ArgumentTypeError(f"{name} must be a real number, got {_describe(value)}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, got NaN")
    if finite and math.isinf(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<' if high_open else '<='} {high:g}")
        want = "a finite number" if finite else "a number"
        raise ValueError(f"{name} must be {want} {' and '.join(parts)}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a Python bool; only ``True``/``False`` (or numpy bools) pass, not 0/1 or strings."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def check_choice(name: str, value: Any, choices: Sequence[str], *, none: bool = False) -> str | None:
    """``value``, checked to be one of the strings ``choices``."""
    if value is None and none:
        return None
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be one of {tuple(choices)}, got {_describe(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_str(name: str, value: Any, *, empty: bool = True, none: bool = False) -> str | None:
    """``value``, checked to be a string (non-empty unless ``empty``)."""
    if value is None and none:
        return None
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a string, got {_describe(value)}")
    if not empty and not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def check_path(name: str, value: Any, *, none: bool = False) -> Path | None:
    """``value`` as a ``pathlib.Path``; only strings and ``os.PathLike`` objects pass (not ``None``,
    numbers or bytes)."""
    if value is None and none:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ArgumentTypeError(f"{name} must be a path (str or os.PathLike), got {_describe(value)}")
    path = Path(value)
    if not str(value):
        raise ValueError(f"{name} must not be an empty path")
    return path


def check_real_dtype(name: str, dtype: Any, *, allow_bool: bool = True) -> None:
    """Raise ``TypeError`` unless ``dtype`` is a real numeric dtype (integer, float, and bool if allowed)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise ArgumentTypeError(f"{name} must hold real numbers, got complex dtype {dtype} "
                                "(take .real or abs() first)")
    if not (dtype.kind in "iuf" or (allow_bool and dtype.kind == "b")):
        raise ArgumentTypeError(f"{name} must hold real numbers, got dtype {dtype}")


def check_array(name: str, value: Any, *, ndim: int | Sequence[int] | None = None, finite: bool = True,
                dtype: Any = np.float64, allow_bool: bool = False, min_size: int = 1) -> np.ndarray:
    """``value`` (array, list, torch tensor or number) as a numpy array of ``dtype`` (``None``: keep its own).

    Checks: real numeric values (not strings, objects, complex; bools only with ``allow_bool``), ``ndim``
    (an int or a set of allowed ones), at least ``min_size`` elements and, with ``finite``, no NaN or inf.
    """
    if value is None or isinstance(value, (str, bytes)):
        raise ArgumentTypeError(f"{name} must be an array of real numbers, got {_describe(value)}")
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensor
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ArgumentTypeError(f"{name} must be an array of real numbers: {exc}") from None
    check_real_dtype(name, arr.dtype, allow_bool=allow_bool)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be a {want} array, got shape {arr.shape}")
    if arr.size < min_size:
        if min_size == 1:
            raise ValueError(f"{name} is empty (shape {arr.shape})")
        raise ValueError(f"{name} must hold at least {min_size} values, got shape {arr.shape}")
    if finite and arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            kind = "NaN" if np.isnan(arr[bad]).any() else "inf"
            raise ValueError(f"{name} contains {kind} values ({int(bad.sum())} of {arr.size})")
    if dtype is not None:
        with np.errstate(over="ignore"):
            out = arr.astype(dtype, copy=False)
        if finite and out.dtype.kind == "f" and out is not arr and not np.isfinite(out).all():
            raise ValueError(f"{name} has values beyond the range of {out.dtype} (largest magnitude "
                             f"{float(np.abs(arr).max()):.3g})")
        arr = out
    return arr


def memory_limit() -> int:
    """Bytes one call may plan to allocate: ``LCL_WORKBENCH_MAX_GB`` GiB if set, else 8 GiB."""
    text = os.environ.get("LCL_WORKBENCH_MAX_GB", "").strip()
    if not text:
        return DEFAULT_MEMORY_LIMIT
    try:
        gb = float(text)
    except ValueError:
        raise ValueError(f"LCL_WORKBENCH_MAX_GB must be a positive number of GiB, got {text!r}") from None
    if not (math.isfinite(gb) and gb > 0):
        raise ValueError(f"LCL_WORKBENCH_MAX_GB must be a positive number of GiB, got {text!r}")
    return int(gb * 2 ** 30)


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.3g} GiB"


def check_nbytes(name: str, value: Any, n_bytes: float, *, what: str = "its arrays") -> None:
    """Raise ``ValueError`` when ``name=value`` would make the call allocate more than :func:`memory_limit`
    bytes (``n_bytes``, an estimate of its largest arrays)."""
    limit = memory_limit()
    if n_bytes > limit:
        raise ValueError(f"{name}={value!r} is too large: {what} would need about {_gib(n_bytes)} of memory, more "
                         f"than the {_gib(limit)} limit (set LCL_WORKBENCH_MAX_GB to change it)")


def check_device(name: str, value: Any, *, none: bool = False) -> Any:
    """``value`` (a device name such as ``"cpu"``/``"cuda:1"``, or a ``torch.device``) as a ``torch.device``;
    ``ValueError`` naming ``name`` for an unknown device string, ``TypeError`` for anything else."""
    import torch

    if value is None and none:
        return None
    if isinstance(value, torch.device):
        return value
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a device name such as 'cpu' or 'cuda', got {_describe(value)}")
    try:
        return torch.device(value)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ValueError(f"{name} is not a valid torch device: {value!r} ({exc})") from None


def check_instance(name: str, value: Any, cls: type | tuple[type, ...], *, none: bool = False) -> Any:
    """``value``, checked to be an instance of ``cls`` (a class or a tuple of classes; ``None`` passes when
    ``none`` is true); ``TypeError`` naming ``name`` and the expected class otherwise."""
    if value is None and none:
        return None
    if not isinstance(value, cls):
        classes = cls if isinstance(cls, tuple) else (cls,)
        want = " or ".join(c.__name__ for c in classes)
        raise ArgumentTypeError(f"{name} must be a {want}{' or None' if none else ''}, got {_describe(value)}")
    return value


def check_tensor(name: str, value: Any, *, ndim: int | Sequence[int] | None = None, floating: bool = True,
                 finite: bool = True, min_size: int = 1) -> Any:
    """``value``, checked to be a ``torch.Tensor`` (not a numpy array, list or number) with ``ndim`` dimensions
    (an int or a set of allowed ones), a floating-point dtype when ``floating`` (never complex), at least
    ``min_size`` elements and, with ``finite``, no NaN or inf. Returns the tensor unchanged."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise ArgumentTypeError(f"{name} must be a torch.Tensor, got {_describe(value)}")
    if value.is_complex():
        raise ArgumentTypeError(f"{name} must hold real numbers, got complex dtype {value.dtype}")
    if floating and not value.is_floating_point():
        raise ArgumentTypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if not floating and value.dtype == torch.bool:
        raise ArgumentTypeError(f"{name} must hold numbers, got dtype {value.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be a {want} tensor, got shape {tuple(value.shape)}")
    if value.numel() < min_size:
        if min_size == 1:
            raise ValueError(f"{name} is empty (shape {tuple(value.shape)})")
        raise ValueError(f"{name} must hold at least {min_size} values, got shape {tuple(value.shape)}")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or inf values")
    return value


def check_torch_dtype(name: str, value: Any, *, floating: bool = True) -> Any:
    """``value``, checked to be a ``torch.dtype`` (a floating-point one when ``floating``)."""
    import torch

    if not isinstance(value, torch.dtype):
        raise ArgumentTypeError(f"{name} must be a torch.dtype such as torch.float32, got {_describe(value)}")
    if floating and not value.is_floating_point:
        raise ValueError(f"{name} must be a floating-point torch.dtype, got {value}")
    return value
