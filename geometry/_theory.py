"""Analytic capacities: the oracles the mean-field estimates are tested against."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from data._checks import check_float, check_int

__all__ = ["gardner_capacity", "ball_capacity", "subspace_capacity"]


def gardner_capacity(kappa: float = 0.0) -> float:
    """Capacity of points at margin ``kappa`` (Gardner 1988): ``1/alpha_0 = kappa phi(kappa) + (1+kappa^2) Phi(kappa)``.

    Parameters
    ----------
    kappa
        Margin (``>= 0``).

    Returns
    -------
    float

    Examples
    --------
    >>> import geometry
    >>> geometry.gardner_capacity(0.0), round(geometry.gardner_capacity(1.0), 6)
    (2.0, 0.519572)
    """
    return float(1.0 / _inverse_gardner(kappa))


def _inverse_gardner(kappa: float) -> float:
    """``1 / alpha_0(kappa)``; ``inf`` where ``kappa^2`` overflows (kappa beyond ~1e154: the capacity is 0)."""
    kappa = check_float("kappa", kappa, low=0.0)
    with np.errstate(over="ignore"):  # pdf's exp(-kappa^2 / 2) underflows to 0 there, as it should
        return float(kappa * norm.pdf(kappa) + (1.0 + kappa * kappa) * norm.cdf(kappa))


def ball_capacity(dimension: int) -> float:
    """Capacity of ``dimension``-dimensional balls of radius 1 (unit center norm) at zero margin: ``2/(D+1)``.

    Parameters
    ----------
    dimension
        Ball dimension ``D >= 0`` (0: points).

    Returns
    -------
    float

    Examples
    --------
    >>> import geometry
    >>> geometry.ball_capacity(1)
    1.0
    """
    dimension = check_int("dimension", dimension, low=0)
    return 2.0 / (dimension + 1)


def subspace_capacity(dimension: int, kappa: float = 0.0) -> float:
    """Capacity of ``D``-dimensional affine subspaces (balls of infinite radius): ``1/(D + 1/alpha_0(kappa))``.

    Parameters
    ----------
    dimension
        Subspace dimension ``D >= 0``.
    kappa
        Margin.

    Returns
    -------
    float

    Examples
    --------
    >>> import geometry
    >>> round(geometry.subspace_capacity(1), 6)
    0.666667
    """
    dimension = check_int("dimension", dimension, low=0)
    return float(1.0 / (dimension + _inverse_gardner(kappa)))
