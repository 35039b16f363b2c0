"""Parts of MFTMA's anchor-point analysis (``_mftma``) around the solve: each manifold's principal coordinates
and Gaussian samples, the chunks of manifolds solved together, per-manifold summaries and the result dataset.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import torch
import xarray as xr

__all__: list[str] = []

# Elements (manifolds x samples x points) handled per batched solve; bounds memory.
_CHUNK_ELEMENTS = 4_000_000


def _samples(seed: int, index: int, n_t: int, dim: int) -> np.ndarray:
    """Gaussian samples ``T`` of manifold ``index``: ``(n_t, dim + 1)``, last column the center coordinate."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    return rng.standard_normal((n_t, dim + 1))


def _principal_coordinates(points: list[torch.Tensor], m: int, D: int) -> torch.Tensor:
    """Coordinates of each manifold's points in the principal basis of their span.

    ``points[j]`` ``(m_j, A)``; returns ``C`` ``(P, m, D)`` (zero-padded), ``C_j C_j^T = X_j X_j^T`` up to
    rounding, with ``min(m_j, A)`` columns in decreasing variance order, each column's sign fixed so that the
    sum of cubed coordinates is positive (ties: the sign of the largest-magnitude coordinate). The basis depends
    only on the points' Gram matrix, so rotations of the ambient space and permutations of the points leave the
    coordinates (and thus the Gaussian samples drawn in them) unchanged.
    """
    P = len(points)
    ref = points[0]
    C = torch.zeros((P, m, D), dtype=ref.dtype, device=ref.device)
    # Group manifolds of the same shape so that each group is one batched eigendecomposition.
    groups: dict[tuple[int, int], list[int]] = {}
    for j, p in enumerate(points):
        groups.setdefault(tuple(p.shape), []).append(j)
    for (mj, A), js in groups.items():
        # Gram matrices one manifold at a time (no stacked copy of the (m, A) point arrays).
        if A >= mj:  # span of at most mj dims: eigenvectors of the point Gram matrix
            gram = torch.stack([points[j] @ points[j].T for j in js])
            evals, evecs = torch.linalg.eigh(gram)
            evals, evecs = evals.flip(-1), evecs.flip(-1)
            Cg = evecs * torch.sqrt(evals.clamp_min(0.0))[:, None, :]
        else:  # fewer features than points: project on the eigenvectors of the feature Gram matrix
            evals, evecs = torch.linalg.eigh(torch.stack([points[j].T @ points[j] for j in js]))
            Cg = torch.stack([points[j] @ evecs[g].flip(-1) for g, j in enumerate(js)])
        skew = (Cg ** 3).sum(1)
        scale = (Cg.abs() ** 3).sum(1)
        big = torch.gather(Cg, 1, Cg.abs().argmax(1, keepdim=True)).squeeze(1)
        sign = torch.where(skew.abs() > 1e-9 * scale, torch.sign(skew), torch.sign(big))
        sign = torch.where(sign == 0, torch.ones_like(sign), sign)
        Cg = Cg * sign[:, None, :]
        idx = torch.as_tensor(js, device=ref.device)
        C[idx, :mj, : Cg.shape[-1]] = Cg
    return C


def _summaries(F: torch.Tensor, s: torch.Tensor, z: torch.Tensor, dims: torch.Tensor, definition: str
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Capacity, radius and dimension per manifold from the per-sample values.

    ``F`` ``(P, n)``, anchor points ``s`` and samples ``z`` ``(P, n, D)`` (zero-padded), ``dims`` ``(P,)``.
    """
    mean_F = F.mean(-1)
    alpha = torch.where(mean_F > 0, 1.0 / mean_F, torch.full_like(mean_F, torch.inf))
    s_sq = (s * s).sum(-1)
    z_norm = torch.linalg.vector_norm(z, dim=-1)
    zs = (z * s).sum(-1)
    if definition == "reference":
        # R_M: spread of the anchor points around their mean over samples (PRX 2018 eq. 28 as coded in the
        # reference); D_M: D times the SQUARED MEAN cosine between t and the anchor point (reference code).
        s_mean = s.mean(1, keepdim=True)
        radius = torch.sqrt(((s - s_mean) ** 2).sum(-1).mean(-1))
        cos = zs / (z_norm.clamp_min(torch.finfo(z.dtype).tiny) * torch.sqrt(s_sq + 1e-12))
        dimension = dims.to(F.dtype) * cos.mean(-1) ** 2
    else:
        # Theory: R_M^2 = <|s|^2>, D_M = <(t . s_hat)^2> over the samples.
        radius = torch.sqrt(s_sq.mean(-1))
        proj_sq = torch.where(s_sq > 0, zs * zs / s_sq.clamp_min(torch.finfo(z.dtype).tiny), torch.zeros_like(zs))
        dimension = proj_sq.mean(-1)
    return alpha, radius, dimension


def _chunks(points: list[torch.Tensor], n_t: int, workers: int) -> list[list[int]]:
    """Manifold indices in chunks of equal point count, each at most ``_CHUNK_ELEMENTS`` solver elements; a run
    of equal-size manifolds is cut into a multiple of ``workers`` chunks of near-equal length."""
    order = sorted(range(len(points)), key=lambda i: (points[i].shape[0], i))
    chunks: list[list[int]] = []
    start = 0
    while start < len(order):
        m = points[order[start]].shape[0]
        run = start
        while run < len(order) and points[order[run]].shape[0] == m:
            run += 1
        count = run - start
        per = max(1, _CHUNK_ELEMENTS // (n_t * m))
        n_chunks = -(-count // per)
        n_chunks = min(count, -(-n_chunks // workers) * workers)
        bounds = np.linspace(start, run, n_chunks + 1).round().astype(int)
        chunks.extend(order[lo:hi] for lo, hi in pairwise(bounds))
        start = run
    return chunks


def _dataset(res: dict[str, np.ndarray], labels: np.ndarray, n_points: list[int], attrs: dict[str, Any]
             ) -> xr.Dataset:
    alpha = res["alpha"]
    with np.errstate(divide="ignore"):
        harmonic = 1.0 / np.mean(1.0 / alpha)
    return xr.Dataset(
        {
            "manifold_capacity": ("manifold", alpha),
            "manifold_radius": ("manifold", res["radius"]),
            "manifold_dimension": ("manifold", res["dimension"]),
            "n_points": ("manifold", np.asarray(n_points, dtype=np.int64)),
            "capacity": ((), float(harmonic)),
            "radius": ((), float(np.mean(res["radius"]))),
            "dimension": ((), float(np.mean(res["dimension"]))),
        },
        coords={"manifold": labels},
        attrs=attrs,
    )
