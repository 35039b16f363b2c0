"""Simulated manifold capacity: the critical projection dimension at which random dichotomies become separable."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.optimize
import xarray as xr

from data._checks import check_array, check_bool, check_int, check_nbytes

from ._inputs import _scaled, validate_manifolds, validate_settings

#: Most dichotomies per dimension that :func:`simulated_capacity` accepts (each is one linear program).
MAX_DICHOTOMIES = 100_000

__all__ = ["simulated_capacity", "separable"]


def separable(points: np.ndarray, labels: np.ndarray) -> bool:
    """Exact check: is there ``(w, b)`` with ``y_mu (w . x_mu + b) >= 1`` for every point (LP feasibility)?

    Parameters
    ----------
    points
        ``(M, n)`` points.
    labels
        ``(M,)`` labels in ``{-1, +1}``.

    Returns
    -------
    bool
        True when the two classes are strictly linearly separable (with a bias).

    Raises
    ------
    TypeError
        For non-numeric (or complex) points or labels.
    ValueError
        For shapes that do not match, NaN/inf, or labels other than -1 and +1.

    Notes
    -----
    Separability does not depend on the scale of the points; they are divided by a power of two near their
    largest absolute value first, so that the LP solver's absolute tolerances see values near 1.

    Examples
    --------
    >>> import numpy as np
    >>> from geometry._simulated import separable
    >>> separable(np.array([[0.0], [1.0]]), np.array([-1, 1]))
    True
    >>> separable(np.array([[0.0], [1.0], [2.0]]), np.array([-1, 1, -1]))
    False
    """
    points = check_array("points", points, ndim=2)
    labels = check_array("labels", labels, ndim=1)
    if labels.shape[0] != points.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} entries but points has {points.shape[0]} rows")
    if not np.isin(labels, (-1.0, 1.0)).all():
        raise ValueError(f"labels must be -1 or +1, got values {np.unique(labels)[:5].tolist()}")
    points = _scaled([points])[0]
    M, n = points.shape
    A = -labels[:, None] * np.hstack([points, np.ones((M, 1))])
    res = scipy.optimize.linprog(np.zeros(n + 1), A_ub=A, b_ub=-np.ones(M), bounds=[(None, None)] * (n + 1),
                                 method="highs")
    if res.status == 0:
        return True
    if res.status == 2:
        return False
    raise RuntimeError(f"linear-separability LP failed: {res.message}")


def _fraction(manifolds: list[np.ndarray], n: int, n_dichotomies: int, seed: int, balanced: bool) -> float:
    P = len(manifolds)
    N = manifolds[0].shape[1]
    sizes = np.array([m.shape[0] for m in manifolds])
    X = np.vstack(manifolds)
    owner = np.repeat(np.arange(P), sizes)
    count = 0
    for rep in range(n_dichotomies):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(n), rep]))
        if balanced:
            y = np.where(rng.permutation(P) < P // 2, -1.0, 1.0)
            if P % 2 == 1:
                y[rng.integers(P)] = rng.choice([-1.0, 1.0])
        else:
            y = rng.choice([-1.0, 1.0], size=P)
        W = rng.standard_normal((N, n)) / np.sqrt(n)
        count += separable(X @ W, y[owner])
    return count / n_dichotomies


def simulated_capacity(
    x: Any,
    by: str | None = None,
    n_dichotomies: int = 50,
    seed: int = 0,
    *,
    balanced: bool = True,
    max_dimension: int | None = None,
) -> xr.Dataset:
    """Simulated capacity ``P / n_c`` by bisection over the dimension of a random projection.

    At a projection dimension ``n``, ``n_dichotomies`` random dichotomies of the ``P`` manifolds (each manifold's
    points share a label) are drawn, each with its own Gaussian projection ``N -> n``, and every point of every
    manifold is checked for exact linear separability with a bias (LP feasibility, :func:`separable`). ``n_c`` is
    where the separable fraction crosses 1/2: bisection finds the smallest ``n`` with fraction ``>= 1/2``, then
    ``n_c`` is interpolated linearly between it and ``n - 1``.

    Parameters
    ----------
    x
        An assembly (manifolds: groups of ``by``) or a list of ``P`` arrays ``(m_i, N)``.
    by
        Presentation coordinate defining the manifolds (default ``"category"``; assemblies only).
    n_dichotomies
        Random dichotomies (and projections) per dimension.
    seed
        Seed; dimension ``n``, repetition ``r`` draw from ``SeedSequence([seed, n, r])``.
    balanced
        Draw balanced dichotomies (``P // 2`` manifolds per class, the usual choice) or uniformly random ones
        (Cover's setting).
    max_dimension
        Largest projection dimension tried, in ``[1, N]`` (default ``N``: a projection to more than ``N``
        dimensions separates exactly the dichotomies that ``N`` dimensions do).

    Returns
    -------
    xarray.Dataset
        ``capacity`` (``P / n_c``; NaN with a warning if even ``max_dimension`` separates fewer than half),
        ``n_c``, ``separable_fraction`` along ``dimension`` (every dimension evaluated); settings as attributes.

    Raises
    ------
    TypeError
        For settings of the wrong type (``balanced`` not a bool, a string or float for an integer).
    ValueError
        Before any linear program: bad manifolds (see :func:`validate_manifolds`), ``n_dichotomies`` outside
        ``[1, 100000]``, ``max_dimension`` outside ``[1, N]`` or so large that the projections would not fit in
        memory.

    Notes
    -----
    The capacity does not depend on the scale of the data; the data are divided by a power of two near their
    largest absolute value first (values near 1e200 or 1e-300 give the results of values near 1).

    Examples
    --------
    >>> import numpy as np
    >>> import geometry
    >>> rng = np.random.default_rng(0)
    >>> pts = [np.repeat(rng.normal(size=(1, 40)), 2, axis=0) for _ in range(40)]  # 40 "point" manifolds
    >>> ds = geometry.simulated_capacity(pts, n_dichotomies=20)
    >>> 1.5 < float(ds.capacity) < 2.6
    True
    """
    manifolds, labels = validate_manifolds(x, by)
    validate_settings(seed=seed)
    n_dichotomies = check_int("n_dichotomies", n_dichotomies, low=1, high=MAX_DICHOTOMIES)
    balanced = check_bool("balanced", balanced)
    P, N = len(manifolds), manifolds[0].shape[1]
    M = sum(m.shape[0] for m in manifolds)
    hi = check_int("max_dimension", max_dimension, low=1, none=True)
    if hi is None:
        hi = N
    elif hi > N:
        raise ValueError(f"max_dimension={hi} exceeds the number of features N={N}: a projection to more than N "
                         "dimensions separates exactly the dichotomies that N dimensions do")
    # one projection (N, n) and the projected points (M, n) at a time, plus the LP's constraint matrix
    check_nbytes("max_dimension" if max_dimension is not None else "the number of features", hi,
                 8 * hi * (N + 3 * M), what=f"projections of {M} points from {N} to {hi} dimensions")
    manifolds = _scaled(manifolds)
    origin = np.vstack(manifolds).mean(0)
    manifolds = [m - origin for m in manifolds]
    cache: dict[int, float] = {0: 0.0}

    def frac(n: int) -> float:
        if n not in cache:
            cache[n] = _fraction(manifolds, n, int(n_dichotomies), int(seed), balanced)
        return cache[n]

    if frac(hi) < 0.5:
        warnings.warn(
            f"fewer than half of the dichotomies are separable even at dimension {hi}; the simulated capacity is "
            f"below P / {hi} and is returned as NaN", RuntimeWarning, stacklevel=2,
        )
        n_c = np.nan
    else:
        lo = 0
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if frac(mid) >= 0.5:
                hi = mid
            else:
                lo = mid
        f_lo, f_hi = frac(lo), frac(hi)
        n_c = lo + (0.5 - f_lo) / (f_hi - f_lo) if f_hi > f_lo else float(hi)
    dims = np.array(sorted(k for k in cache if k > 0))
    return xr.Dataset(
        {
            "capacity": ((), float(P / n_c) if np.isfinite(n_c) else np.nan),
            "n_c": ((), float(n_c)),
            "separable_fraction": ("dimension", np.array([cache[k] for k in dims])),
        },
        coords={"dimension": dims},
        attrs={"n_dichotomies": int(n_dichotomies), "seed": int(seed), "balanced": int(balanced),
               "n_manifolds": int(P), "manifold_labels": [str(v) for v in labels]},
    )
