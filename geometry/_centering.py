"""The centering steps of :func:`geometry.capacity`: manifold centers, and each manifold re-centered on its own
center, its center directions removed and scaled by its center norm (the reference's ``manifold_analysis_corr``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from ._inputs import _scale_exponent, _scaled

__all__: list[str] = []


def _manifold_means(manifolds: list[np.ndarray], dtype: torch.dtype, device: torch.device
                    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """The manifolds as tensors, their means, and the centers of the data scaled as :func:`_scaled` scales it.

    Returns ``(X, means, centers)``: ``X`` and ``means`` at the data's own scale, ``centers = means * 2^-e``,
    bit for bit the means of ``_scaled(manifolds)`` (a power of two changes no digit) without that copy of
    the data (0.13 s at P = 100, m = 50, N = 5000). Data whose squares could leave the dtype's range (largest
    absolute value beyond ``2^(+-256)``, ``2^(+-32)`` in float32) are scaled copies, as before.
    """
    exponent = _scale_exponent(manifolds)
    if abs(exponent) > (256 if dtype == torch.float64 else 32):
        manifolds, exponent = _scaled(manifolds), 0
    X = [torch.as_tensor(m, dtype=dtype, device=device) for m in manifolds]
    means = torch.stack([m.mean(0) for m in X])
    return X, means, means * 2.0 ** -exponent


def _residual_gram(x: torch.Tensor, mean: torch.Tensor, directions: torch.Tensor | None) -> torch.Tensor:
    """Gram matrix ``Z Z^T`` of ``Z = (x - mean)(I - W W^T)``, ``W`` the orthonormal ``directions``.

    One pass builds ``A = [x - mean; W^T]``; its Gram matrix holds ``(x - mean)(x - mean)^T`` and
    ``(x - mean) W``, and ``Z Z^T = (x - mean)(x - mean)^T - ((x - mean) W)((x - mean) W)^T``. On CPU the product
    is numpy's (``A @ A.T`` is a symmetric rank-k update there, half a general product's work).
    """
    m, N = x.shape
    K = 0 if directions is None else directions.shape[1]
    if x.device.type == "cpu":
        xn = x.numpy()
        if xn.flags.f_contiguous:  # e.g. a transposed (features, points) array: A^T in the points' own layout
            At = np.empty((N, m + K), dtype=xn.dtype)
            np.subtract(xn.T, mean.numpy()[:, None], out=At[:, :m])
            if K:
                At[:, m:] = directions.numpy()
            G = torch.from_numpy(At.T @ At)
        else:
            A = np.empty((m + K, N), dtype=xn.dtype)
            np.subtract(xn, mean.numpy(), out=A[:m])
            if K:
                A[m:] = directions.numpy().T
            G = torch.from_numpy(A @ A.T)
    else:
        A = x - mean if directions is None else torch.cat([x - mean, directions.T])
        G = A @ A.T
    if directions is None:
        return G
    ZW = G[:m, m:]
    return G[:m, :m] - ZW @ ZW.T


def _deviations(X: list[torch.Tensor], means: torch.Tensor, directions: torch.Tensor | None, labels: Any,
                workers: int = 1) -> list[torch.Tensor]:
    """Each manifold minus its own center, minus the center directions, divided by its center's norm.

    The center is measured from the global mean of all points, after removing the center directions. A
    manifold with fewer points than features (``m < N``) comes back as ``(m, m)`` coordinates with the same
    Gram matrix (eigenvectors scaled by root eigenvalues): everything downstream depends on the points only
    through that Gram matrix (see ``_anchor_stats._principal_coordinates``), and keeping ``(m, N)`` copies of every
    manifold would take as much fresh memory as the input (1.6 GB at P=1000, m=100, N=2000). A center at most
    ``1e-12`` times the largest distance of a point from the global mean (bounded here by the manifold's
    spread plus its center norm) is an error. ``workers`` Python threads share the manifolds (numpy and torch
    release the interpreter lock in these kernels); the result does not depend on them.
    """
    sizes = torch.tensor([x.shape[0] for x in X], dtype=means.dtype, device=means.device)
    origin = (sizes @ means) / sizes.sum()
    offsets = means - origin
    if directions is not None:
        offsets = offsets - (offsets @ directions) @ directions.T
    norms = torch.linalg.vector_norm(offsets, dim=1)

    def deviation(i: int) -> torch.Tensor:
        x, norm = X[i], norms[i]
        m, N = x.shape
        if m < N:
            G = _residual_gram(x, means[i], directions)
            spread = torch.sqrt(torch.diagonal(G).max().clamp_min(0.0))
        else:
            z = x - means[i]
            if directions is not None:
                z = z - (z @ directions) @ directions.T
            spread = torch.linalg.vector_norm(z, dim=1).max()
        if not bool(norm > 1e-12 * (spread + norm).clamp_min(torch.finfo(x.dtype).tiny)):
            raise ValueError(
                f"manifold {labels[i]!r}: its center coincides with the global mean"
                + (" after removing the center correlations" if directions is not None else "")
                + "; the capacity is undefined"
            )
        if m >= N:
            return z / norm
        evals, evecs = torch.linalg.eigh(G / (norm * norm))
        return evecs * torch.sqrt(evals.clamp_min(0.0))[None, :]

    if workers > 1 and len(X) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(deviation, range(len(X))))
    return [deviation(i) for i in range(len(X))]
