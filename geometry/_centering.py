"""The centering steps of :func:`geometry.capacity`: manifold centers, and each manifold relative to the global
mean, its center directions removed, re-centered on its own center and scaled by its center norm (the
reference's ``manifold_analysis_corr``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from ._inputs import _scale_exponent, _scaled

__all__: list[str] = []


def _manifold_means(manifolds: list[np.ndarray], dtype: torch.dtype, device: torch.device
                    ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The manifolds as tensors and the manifold centers of the data scaled as :func:`_scaled` scales it.

    Returns ``(X, centers)``: ``X`` at the data's own scale (no copy of float64 CPU data), ``centers`` bit for
    bit the means of ``_scaled(manifolds)`` (their means times a power of two, which changes no digit) without
    that copy of the data (0.13 s at P = 100, m = 50, N = 5000). Data whose squares could leave the dtype's
    range (largest absolute value beyond ``2^(+-256)``, ``2^(+-32)`` in float32) are scaled copies, as before.
    """
    exponent = _scale_exponent(manifolds)
    if abs(exponent) > (256 if dtype == torch.float64 else 32):
        manifolds, exponent = _scaled(manifolds), 0
    X = [torch.as_tensor(m, dtype=dtype, device=device) for m in manifolds]
    return X, torch.stack([m.mean(0) for m in X]) * 2.0 ** -exponent


def _deviations(X: list[torch.Tensor], directions: torch.Tensor | None, labels: Any, workers: int = 1
                ) -> list[torch.Tensor]:
    """Each manifold relative to the global mean, minus the center directions, re-centered on its own center
    and divided by the center's norm.

    ``X`` may be the data at their own scale (see :func:`_manifold_means`): every step is invariant to a power
    of two. A manifold with fewer points than features (``m < N``) comes back as ``(m, m)`` coordinates with the
    same Gram matrix (eigenvectors scaled by root eigenvalues): everything downstream depends on the points only
    through that Gram matrix (see ``_anchor_stats._principal_coordinates``), and keeping ``(m, N)`` copies of
    every manifold would take as much fresh memory as the input (1.6 GB at P=1000, m=100, N=2000; first-touch
    page faults made that step 5 s of a 40 s call). ``workers`` Python threads share the manifolds (torch
    releases the interpreter lock in its kernels), each on one torch thread: the result does not depend on them.
    """
    origin = sum(m.sum(0) for m in X) / sum(int(m.shape[0]) for m in X)

    def deviation(i: int) -> torch.Tensor:
        xr_ = X[i] - origin
        if directions is not None:
            xr_ = xr_ - (xr_ @ directions) @ directions.T
        c = xr_.mean(0)
        norm = torch.linalg.vector_norm(c)
        tiny = torch.finfo(xr_.dtype).tiny
        # The center must exceed 1e-12 times the largest point norm; the norm of all points bounds that norm from
        # above and is one fast pass (row norms of a column-major manifold are a slow strided reduction).
        if not bool(norm > 1e-12 * torch.linalg.vector_norm(xr_).clamp_min(tiny)) and not bool(
                norm > 1e-12 * torch.linalg.vector_norm(xr_, dim=1).max().clamp_min(tiny)):
            raise ValueError(
                f"manifold {labels[i]!r}: its center coincides with the global mean"
                + (" after removing the center correlations" if directions is not None else "")
                + "; the capacity is undefined"
            )
        dev = xr_.sub_(c).div_(norm)
        if dev.shape[0] < dev.shape[1]:
            evals, evecs = torch.linalg.eigh(dev @ dev.T)
            dev = evecs * torch.sqrt(evals.clamp_min(0.0))[None, :]
        return dev

    if workers > 1 and len(X) > 1:
        # A new thread starts with the default OpenMP thread count: set one thread there too, or torch would split
        # reductions (and so round) differently from the serial computation.
        with ThreadPoolExecutor(max_workers=workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            return list(pool.map(deviation, range(len(X))))
    return [deviation(i) for i in range(len(X))]
