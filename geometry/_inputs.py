"""Input checks shared by every geometry measure: manifolds from an assembly or a list of arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

import data
from data._checks import (
    check_choice,
    check_device,
    check_float,
    check_int,
    check_nbytes,
    check_seed,
)

__all__ = ["validate_manifolds", "validate_settings"]

DEFAULT_BY = "category"


def validate_manifolds(x: Any, by: str | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Check and split the input of a geometry measure into manifolds.

    Parameters
    ----------
    x
        An assembly (``xarray.DataArray`` with dims ``(presentation, neuroid)``, see :func:`data.assembly`), whose
        manifolds are the groups of presentations that share a value of the ``by`` coordinate; or a sequence of
        ``P`` arrays of shape ``(m_i, N)`` (points x features), one per manifold.
    by
        Presentation coordinate that defines the manifolds (assemblies only; default ``"category"``). Must be
        ``None`` for a list of arrays.

    Returns
    -------
    manifolds : list of numpy.ndarray
        ``P`` float64 arrays of shape ``(m_i, N)``.
    labels : numpy.ndarray
        One label per manifold: the sorted unique values of ``by``, or ``0 .. P-1`` for a list.

    Raises
    ------
    TypeError
        For an input that is neither an assembly nor a sequence of arrays, or non-numeric values.
    ValueError
        Naming the problem: fewer than 2 manifolds, a manifold with fewer than 2 points, NaN or inf, a missing
        ``by`` coordinate, arrays of different feature counts, a 3-D assembly (average its time bins first).

    Examples
    --------
    >>> import numpy as np
    >>> import geometry
    >>> ms, labels = geometry.validate_manifolds([np.zeros((3, 4)), np.ones((2, 4))])
    >>> [m.shape for m in ms], labels.tolist()
    ([(3, 4), (2, 4)], [0, 1])
    >>> geometry.validate_manifolds([np.zeros((1, 4)), np.ones((2, 4))])
    Traceback (most recent call last):
    ...
    ValueError: manifold 0 has 1 point; every manifold needs at least 2
    """
    if isinstance(x, xr.DataArray):
        manifolds, labels = _split_assembly(x, by)
    elif isinstance(x, xr.Dataset):
        raise TypeError("geometry measures take an assembly (xarray.DataArray), not a Dataset")
    elif isinstance(x, np.ndarray) or not isinstance(x, Sequence) or isinstance(x, (str, bytes)):
        raise TypeError(
            f"x must be an assembly (xarray.DataArray) or a list of (points, features) arrays; got "
            f"{type(x).__name__}"
        )
    else:
        if by is not None:
            raise ValueError(f"by={by!r} only applies to assemblies; a list of arrays is already split")
        manifolds = []
        for i, m in enumerate(x):
            arr = np.asarray(m)
            if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
                raise TypeError(f"manifold {i} must be numeric, got dtype {arr.dtype}")
            if np.iscomplexobj(arr):
                raise TypeError(f"manifold {i} is complex; geometry measures need real values")
            if arr.ndim != 2:
                raise ValueError(f"manifold {i} must be a 2-D (points, features) array, got shape {arr.shape}")
            manifolds.append(arr.astype(np.float64, copy=False))
        labels = np.arange(len(manifolds))
    if len(manifolds) < 2:
        raise ValueError(f"need at least 2 manifolds, got {len(manifolds)}")
    n_features = {m.shape[1] for m in manifolds}
    if len(n_features) != 1:
        raise ValueError(f"all manifolds must have the same number of features, got {sorted(n_features)}")
    if 0 in n_features:
        raise ValueError("manifolds have 0 features")
    for i, m in enumerate(manifolds):
        name = f"manifold {labels[i]!r}" if isinstance(x, xr.DataArray) else f"manifold {i}"
        if m.shape[0] < 2:
            raise ValueError(f"{name} has {m.shape[0]} point; every manifold needs at least 2")
        bad = ~np.isfinite(m)
        if bad.any():
            kind = "NaN" if np.isnan(m[bad]).any() else "inf"
            raise ValueError(f"{name} contains {kind} values ({int(bad.sum())} of {m.size})")
    return manifolds, labels


def _split_assembly(x: xr.DataArray, by: str | None) -> tuple[list[np.ndarray], np.ndarray]:
    data.validate_assembly(x)
    if x.ndim != 2:
        raise ValueError(
            f"geometry measures need a 2-D (presentation, neuroid) assembly; this one has dims {x.dims} "
            "(average or select its time bins first)"
        )
    key = DEFAULT_BY if by is None else by
    if not isinstance(key, str):
        raise TypeError(f"by must be a coordinate name (str), got {type(key).__name__}")
    if key not in x.coords:
        coords = sorted(str(c) for c in x.coords if x[c].dims == ("presentation",))
        raise ValueError(f"assembly has no {key!r} coordinate to define manifolds (presentation coords: {coords})")
    if x[key].dims != ("presentation",):
        raise ValueError(f"coordinate {key!r} must lie on 'presentation', found dims {x[key].dims}")
    groups = x[key].values
    labels, inverse = np.unique(groups, return_inverse=True)
    values = np.asarray(x.transpose("presentation", "neuroid").values, dtype=np.float64)
    manifolds = [values[inverse == i] for i in range(len(labels))]
    return manifolds, labels


def validate_settings(
    *,
    kappa: float | None = None,
    n_t: int | None = None,
    seed: int | None = None,
    center_correlation: str | None = None,
    definition: str | None = None,
    solver: str | None = None,
) -> None:
    """Check the settings of a geometry measure before any work; raise ``ValueError`` naming the problem.

    Parameters
    ----------
    kappa
        Margin, finite and ``>= 0``.
    n_t
        Number of Gaussian samples per manifold, an integer ``>= 1``.
    seed
        Integer seed ``>= 0``.
    center_correlation
        ``"remove"`` or ``"keep"``.
    definition
        ``"reference"`` or ``"theory"`` (radius and dimension definitions, see :func:`geometry.capacity`).
    solver
        ``"fast"``, ``"reference"`` or ``"qp"``.

    Returns
    -------
    None

    Raises
    ------
    TypeError
        For a setting of the wrong type (a string for a number, a bool or float for ``n_t``); the error is also
        a ``ValueError``.
    ValueError
        For a value out of range or an unknown option.

    Examples
    --------
    >>> import geometry
    >>> geometry.validate_settings(kappa=0.5, n_t=200)
    >>> geometry.validate_settings(kappa=-1.0)
    Traceback (most recent call last):
    ...
    ValueError: kappa must be a finite number >= 0, got -1.0
    """
    check_float("kappa", kappa, low=0.0, none=True)
    check_int("n_t", n_t, low=1, none=True)
    check_seed("seed", seed, none=True)
    check_choice("center_correlation", center_correlation, ("remove", "keep"), none=True)
    check_choice("definition", definition, ("reference", "theory"), none=True)
    check_choice("solver", solver, ("fast", "reference", "qp"), none=True)


def _scale_exponent(manifolds: list[np.ndarray]) -> int:
    """The exponent ``e`` of the largest absolute value of the manifolds (``2^(e-1) <= peak < 2^e``; 0 for zeros)."""
    peak = max(max(float(m.max()), -float(m.min())) for m in manifolds)
    return int(np.frexp(peak)[1]) if peak > 0.0 else 0


def _scaled(manifolds: list[np.ndarray]) -> list[np.ndarray]:
    """The manifolds divided by one power of two that brings their largest absolute value into [0.5, 1).

    For the scale-invariant measures (capacity, simulated capacity, alignment, decodability): data at 1e200 or
    1e-300 would overflow or underflow squared norms and solver tolerances; a power of two changes no digit, so
    data already near unit scale gives bit-identical results, and data that differ by a power-of-two factor
    give identical ones. All-zero data are returned unchanged.
    """
    exponent = _scale_exponent(manifolds)
    if exponent == 0:
        return manifolds
    return [np.ldexp(m, -exponent) for m in manifolds]


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cpu")
    dev = check_device("device", device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available")
    return dev


def _check_required(**settings: Any) -> None:
    """``validate_settings`` skips settings given as None; here they are required."""
    for name, value in settings.items():
        if value is None:
            raise TypeError(f"{name} must be a string, got None")


def _check_dtype(dtype: Any) -> torch.dtype:
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def _check_memory(n_t: int, sizes: list[int], dims: list[int], dtype: torch.dtype) -> None:
    """Refuse an ``n_t`` whose per-manifold solver arrays (about a dozen ``(n_t, m + D + 1)`` arrays for the
    largest manifold, which the chunking cannot split) would not fit in memory."""
    width = max(m + d + 1 for m, d in zip(sizes, dims))
    itemsize = torch.finfo(dtype).bits // 8
    check_nbytes("n_t", n_t, 12 * max(itemsize, 8) * n_t * width,
                 what=f"{n_t} Gaussian samples per manifold for manifolds of up to {max(sizes)} points")
