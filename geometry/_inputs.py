"""Input checks shared by every geometry measure: manifolds from an assembly or a list of arrays."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import xarray as xr

import data

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

    Examples
    --------
    >>> import geometry
    >>> geometry.validate_settings(kappa=0.5, n_t=200)
    >>> geometry.validate_settings(kappa=-1.0)
    Traceback (most recent call last):
    ...
    ValueError: kappa must be a finite number >= 0, got -1.0
    """
    if kappa is not None:
        if isinstance(kappa, bool) or not isinstance(kappa, Real) or not np.isfinite(kappa) or kappa < 0:
            raise ValueError(f"kappa must be a finite number >= 0, got {kappa!r}")
    if n_t is not None:
        if isinstance(n_t, bool) or not isinstance(n_t, Integral) or n_t < 1:
            raise ValueError(f"n_t must be an integer >= 1, got {n_t!r}")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if center_correlation is not None and center_correlation not in ("remove", "keep"):
        raise ValueError(f"center_correlation must be 'remove' or 'keep', got {center_correlation!r}")
    if definition is not None and definition not in ("reference", "theory"):
        raise ValueError(f"definition must be 'reference' or 'theory', got {definition!r}")
    if solver is not None and solver not in ("fast", "reference", "qp"):
        raise ValueError(f"solver must be 'fast', 'reference' or 'qp', got {solver!r}")
