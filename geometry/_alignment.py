"""Alignment between manifolds (centers and principal axes) and cross-validated linear decodability."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from data._checks import check_float, check_int, check_seed

from ._inputs import _scaled, validate_manifolds

__all__ = ["alignment", "decodability"]


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def _weighted_abs_cos(Ua: np.ndarray, wa: np.ndarray, Ub: np.ndarray, wb: np.ndarray) -> float:
    """Variance-weighted mean of |cos| between the unit vectors (rows) of two sets."""
    if wa.sum() <= 0 or wb.sum() <= 0:
        return 0.0
    return float(wa @ np.abs(Ua @ Ub.T) @ wb / (wa.sum() * wb.sum()))


def alignment(x: Any, by: str | None = None) -> xr.Dataset:
    """Center alignment, axis alignment, center-axis alignment and center correlation of the manifolds.

    With ``c_i`` the center of manifold ``i`` relative to the global mean of all points and ``(u_ia, var_ia)``
    its principal axes (from the SVD of its centered points) with their variances:

    - ``center_alignment``: mean over pairs ``i != j`` of ``|cos(c_i, c_j)|``;
    - ``axis_alignment``: mean over pairs ``i != j`` of the variance-weighted mean ``|cos(u_ia, u_jb)|``
      (weights ``var_ia * var_jb``), so noise axes with little variance barely count;
    - ``center_axis_alignment``: mean over all pairs ``(i, j)`` of the variance-weighted mean
      ``|cos(u_ia, c_j)|`` (a manifold's axes against every center, its own included);
    - ``center_correlation``: mean ``|cos|`` between the centers minus their mean (the quantity the
      center-correlation step of :func:`geometry.capacity` removes).

    Parameters
    ----------
    x
        An assembly (manifolds: groups of ``by``) or a list of ``P`` arrays ``(m_i, N)``.
    by
        Presentation coordinate defining the manifolds (default ``"category"``; assemblies only).

    Returns
    -------
    xarray.Dataset
        The four scalars plus per-manifold ``manifold_center_alignment``, ``manifold_axis_alignment`` and
        ``manifold_center_axis_alignment`` (each manifold's mean over its partners).

    Notes
    -----
    Every value is invariant to the scale of the data; the data are divided by a power of two near their largest
    absolute value first, so values near 1e200 or 1e-300 give the same results as values near 1. A manifold whose
    points coincide has no axes (its axis terms count as 0), and a center at the global mean has no direction
    (its cosines count as 0).

    Examples
    --------
    >>> import numpy as np
    >>> import geometry
    >>> e = np.eye(3)
    >>> ds = geometry.alignment([e[[0]] + [[0, 0, 0.1], [0, 0, -0.1]], e[[1]] + [[0, 0, 0.1], [0, 0, -0.1]]])
    >>> round(float(ds.axis_alignment), 6), round(float(ds.center_axis_alignment), 6)
    (1.0, 0.0)
    """
    manifolds, labels = validate_manifolds(x, by)
    manifolds = _scaled(manifolds)
    P = len(manifolds)
    origin = np.vstack(manifolds).mean(0)
    centers = np.stack([m.mean(0) for m in manifolds]) - origin
    axes, weights = [], []
    for m in manifolds:
        _, s, vt = np.linalg.svd(m - m.mean(0), full_matrices=False)
        keep = s > s.max() * 1e-10 if s.size and s.max() > 0 else np.zeros_like(s, dtype=bool)
        axes.append(vt[keep])
        weights.append(s[keep] ** 2)
    cu = _unit(centers)
    cc = np.abs(cu @ cu.T)
    off = ~np.eye(P, dtype=bool)
    per_center = (cc * off).sum(1) / (P - 1)
    per_axis = np.zeros(P)
    per_center_axis = np.zeros(P)
    ones = np.ones(1)
    for i in range(P):
        per_axis[i] = np.mean([_weighted_abs_cos(axes[i], weights[i], axes[j], weights[j])
                               for j in range(P) if j != i])
        per_center_axis[i] = np.mean([_weighted_abs_cos(axes[i], weights[i], cu[[j]], ones) for j in range(P)])
    centered = centers - centers.mean(0)
    ku = _unit(centered)
    corr = np.abs(ku @ ku.T)
    return xr.Dataset(
        {
            "center_alignment": ((), float(per_center.mean())),
            "axis_alignment": ((), float(per_axis.mean())),
            "center_axis_alignment": ((), float(per_center_axis.mean())),
            "center_correlation": ((), float(corr[off].mean())),
            "manifold_center_alignment": ("manifold", per_center),
            "manifold_axis_alignment": ("manifold", per_axis),
            "manifold_center_axis_alignment": ("manifold", per_center_axis),
        },
        coords={"manifold": labels},
    )


def decodability(x: Any, by: str | None = None, cv: int = 5, seed: int = 0, *, C: float = 1.0) -> xr.Dataset:
    """Cross-validated accuracy of a linear readout of the manifold labels.

    A standardized L2-regularized multinomial logistic regression (scikit-learn), evaluated by stratified
    ``cv``-fold cross-validation with shuffling seeded by ``seed``.

    Parameters
    ----------
    x
        An assembly (labels: the ``by`` coordinate) or a list of ``P`` arrays ``(m_i, N)`` (label = index).
    by
        Presentation coordinate holding the labels (default ``"category"``; assemblies only).
    cv
        Number of folds (``>= 2``; every manifold needs at least ``cv`` points).
    seed
        Seed of the fold shuffling, in ``[0, 2**32 - 1]`` (scikit-learn's range).
    C
        Inverse regularization strength of the logistic regression (a positive finite number).

    Returns
    -------
    xarray.Dataset
        ``accuracy`` (mean over folds), ``accuracy_sem``, ``chance`` (largest class fraction), ``fold_accuracy``
        along ``fold``; settings as attributes.

    Examples
    --------
    >>> import numpy as np
    >>> import geometry
    >>> rng = np.random.default_rng(0)
    >>> ms = [rng.normal(size=(20, 5)) + 5 * np.eye(5)[i] for i in range(3)]
    >>> float(geometry.decodability(ms, cv=4).accuracy)
    1.0
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    manifolds, labels = validate_manifolds(x, by)
    check_seed("seed", seed, high=2 ** 32 - 1)  # scikit-learn's random_state
    cv = check_int("cv", cv, low=2)
    C = check_float("C", C, low=0.0, low_open=True)
    smallest = min(m.shape[0] for m in manifolds)
    if smallest < cv:
        raise ValueError(f"cv={cv} folds need at least {cv} points per manifold; the smallest has {smallest}")
    X = np.vstack(_scaled(manifolds))  # the standardization is scale-invariant, its float arithmetic is not
    y = np.repeat(np.arange(len(manifolds)), [m.shape[0] for m in manifolds])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=int(seed))
    scores = cross_val_score(model, X, y, cv=folds)
    chance = np.bincount(y).max() / y.size
    return xr.Dataset(
        {
            "accuracy": ((), float(scores.mean())),
            "accuracy_sem": ((), float(scores.std(ddof=1) / np.sqrt(cv))),
            "chance": ((), float(chance)),
            "fold_accuracy": ("fold", scores),
        },
        coords={"fold": np.arange(cv)},
        attrs={"cv": int(cv), "seed": int(seed), "C": float(C), "readout": "logistic regression (L2)",
               "manifold_labels": [str(v) for v in labels]},
    )
