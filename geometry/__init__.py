"""Neural population geometry: manifold capacity (mean-field and simulated), radius, dimension, alignment and
decodability of the manifolds in an assembly (Chung, Lee & Sompolinsky 2018; Cohen et al. 2020).

Every measure takes an assembly (``xarray.DataArray``, manifolds = groups of a presentation coordinate such as
``category``) or a list of ``(points, features)`` arrays, and returns an ``xarray.Dataset``.
"""

from ._inputs import validate_manifolds, validate_settings
from ._mftma import capacity, manifold_geometry

__all__ = [
    "capacity",
    "manifold_geometry",
    "validate_manifolds",
    "validate_settings",
]
