"""Neural population geometry: manifold capacity (mean-field and simulated), radius, dimension, alignment and
decodability of the manifolds in an assembly (Chung, Lee & Sompolinsky 2018; Cohen et al. 2020).

Every measure takes an assembly (``xarray.DataArray``, manifolds = groups of a presentation coordinate such as
``category``) or a list of ``(points, features)`` arrays, and returns an ``xarray.Dataset``.
"""

from ._alignment import alignment, decodability
from ._inputs import validate_manifolds, validate_settings
from ._mftma import capacity, manifold_geometry
from ._simulated import separable, simulated_capacity
from ._theory import ball_capacity, gardner_capacity, subspace_capacity

__all__ = [
    "capacity",
    "manifold_geometry",
    "simulated_capacity",
    "separable",
    "alignment",
    "decodability",
    "gardner_capacity",
    "ball_capacity",
    "subspace_capacity",
    "validate_manifolds",
    "validate_settings",
]
