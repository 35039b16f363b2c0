"""Center-correlation analysis of MFTMA (Cohen et al. 2020): low-rank structure shared by the manifold centers.

Given ``P`` manifold centers, find ``K`` orthonormal directions such that, once they are projected out, the
centers are as uncorrelated as possible:

    V_K = argmin_{V^T V = I_K} 1/2 sum_{mu, nu} cos^2(r_mu, r_nu),    r_mu = (I - V V^T)(c_mu - mean_c),

solved on the Stiefel manifold for ``K = 1, 2, ...``, ``n_reps`` starts each, keeping the start whose residual
centers keep the largest fraction of their norm, stopping after the mean absolute residual correlation failed to
improve three times in a row; the ``K`` with the smallest mean absolute correlation before that run wins.
"Improve" means falling by more than ``rtol`` (relative) below the previous ``K``'s value.

The defaults are the reference implementation's (``fun_FA`` as ``manifold_analysis_corr`` calls it): 10 random
starts per ``K``, pymanopt 0.2's conjugate gradient with its default stopping rules (written out in
``_stiefel._manopt_cg``), ``rtol = 0`` (three rises in a row, then the overall minimum), no refinement of the
selected directions. Options that are not the reference's, each with its measured effect in the README
("MFTMA"): ``start="warm"`` with ``optimizer="fast"`` (warm starts from the ``K - 1`` solution and our
Polak-Ribiere conjugate gradient with a plateau stop), ``rtol = 0.01`` (ends the search on the slow decline
that fitting noise gives with many manifolds) and ``polish`` (a tight-tolerance refinement of the selected
directions).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from ._stiefel import (
    _manopt_batches,
    _qf,
    _stack_starts,
    _stiefel_cg,
    _stiefel_cg_manopt_batch,
)
from ._threads import single_thread, single_thread_blas

__all__: list[str] = []

_log = logging.getLogger(__name__)


@dataclass
class CenterStructure:
    """Result of the center-correlation analysis."""

    directions: torch.Tensor  # (N, K) orthonormal, in the ambient space
    K: int
    correlation_before: float  # mean |cos| between centered centers (off-diagonal)
    correlation_after: np.ndarray  # mean |cos| after removing k = 1..K_tried directions
    max_k: int


def mean_abs_correlation(X: torch.Tensor) -> float:
    """Mean absolute cosine between distinct rows of ``X``."""
    P = X.shape[0]
    norms = torch.linalg.vector_norm(X, dim=1).clamp_min(torch.finfo(X.dtype).tiny)
    C = (X @ X.T) / (norms[:, None] * norms[None, :])
    return float((C.abs().sum() - C.diagonal().abs().sum()) / (P * (P - 1)))


def center_structure(centers: torch.Tensor, **kwargs) -> CenterStructure:
    """Find the low-rank center structure to remove (see the module docstring and ``_center_structure``).

    On CPU every kernel runs on one torch thread and the ``n_reps`` random starts of each ``K`` run concurrently
    in Python threads (``workers``, default ``torch.get_num_threads()``): the per-iteration kernels are small
    (``P x P`` passes), and on a loaded machine OpenMP barriers cost more than they gain (a P=1000 search spent
    up to 145 s on one ``K`` with 2 OpenMP threads at load 5, 4-8 s on one thread). The reference optimizer runs
    the starts in lockstep batches instead (one batch while ``n_reps * P^2 <= 2^20``; the threads then share
    the batches): for P = 100 one batch on one thread took 0.55 s where two threads, each running its own
    starts, took 1.05 s (their small numpy calls contend for the interpreter lock).
    """
    on_cpu = centers.device.type == "cpu"
    if on_cpu:
        kwargs.setdefault("workers", torch.get_num_threads())
    with single_thread(on_cpu), single_thread_blas(on_cpu):
        return _center_structure(centers, **kwargs)


#: Starts of the per-K searches: the reference's random points, or warm starts from the K-1 solution.
STARTS = ("random", "warm")
#: Optimizers of the per-K searches: the reference's (pymanopt CG, written out) or our faster one.
OPTIMIZERS = ("reference", "fast")


def _center_structure(
    centers: torch.Tensor,
    *,
    max_k: int | None = None,
    n_reps: int = 10,
    seed: int = 0,
    start: str = "random",
    optimizer: str = "reference",
    max_iter: int | None = None,
    gtol: float | None = None,
    ftol: float = 1e-9,
    polish: bool = False,
    polish_iter: int = 1000,
    workers: int = 1,
    rtol: float = 0.0,
) -> CenterStructure:
    """Find the low-rank center structure to remove (see the module docstring).

    The defaults are the reference's search (``fun_FA`` as ``manifold_analysis_corr`` calls it): 10 random
    starts per ``K``, pymanopt's conjugate gradient with its default stopping rules, the most stable start kept,
    three rises in a row end the search, the overall minimum wins, no further refinement.

    Parameters
    ----------
    centers
        ``(P, N)`` manifold centers.
    max_k
        Largest ``K`` tried. Default: the reference rule (number of principal components of the centers below
        95% explained variance, plus 11), capped at ``rank - 1`` (``K = rank`` leaves every residual center at
        zero, where the correlation is undefined; the reference has no cap and fails there).
    n_reps
        Starts per ``K`` (reference: 10).
    seed
        Seed of the starts.
    start
        ``"random"`` (default, what the reference runs): each start is a uniformly random point of the Stiefel
        manifold. The reference builds a warm start (a random combination of the centers plus the ``K-1``
        solution) but ``CGmanopt`` never hands it to the solver, which then draws its own random point.
        ``"warm"``: start from that warm start, as ``fun_FA`` apparently intended.
    optimizer
        ``"reference"`` (default): pymanopt's CG (``_stiefel._manopt_cg``), ``max_iter`` 1000 and absolute
        gradient tolerance ``gtol`` 1e-6. ``"fast"``: ``_stiefel._stiefel_cg`` (Polak-Ribiere+, Armijo), ``max_iter``
        300, ``gtol`` 1e-6 relative to the cost, and a plateau stop (``ftol``: relative decrease over 5 iterations).
    max_iter, gtol, ftol
        Per-start optimizer limits (``None``: the optimizer's default above; ``ftol`` only for ``"fast"``).
    polish
        Refine the selected ``K``'s directions to a tight tolerance (``polish_iter`` iterations of
        ``_stiefel._stiefel_cg``, gradient tolerance 1e-10) before returning them. A step the reference does not
        take; it can move the directions far from the selected start (see :func:`geometry.capacity`).
    workers
        Python threads running the starts of one ``K`` concurrently (the reference optimizer: its lockstep
        batches of starts, one batch while ``n_reps * P^2 <= 2^20``). The result does not depend on it: the
        starts are drawn in the same order and compared in that order.
    rtol
        A ``K`` improves on ``K - 1`` when it lowers the mean absolute residual correlation by more than this
        fraction; the search stops after three ``K`` in a row that do not, and keeps the best ``K`` before
        them. ``0`` (default) is the reference rule: three rises in a row, then the overall minimum.
    """
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    dtype, device = centers.dtype, centers.device
    P = centers.shape[0]
    Xb = centers - centers.mean(0, keepdim=True)
    # Coordinates of the centered centers in the orthonormal basis of their span (rotation invariant).
    evals, evecs = torch.linalg.eigh(Xb @ Xb.T)
    evals, evecs = evals.flip(-1), evecs.flip(-1)
    rank = int((evals > evals[0].clamp_min(0) * 1e-12 * P).sum()) if float(evals[0]) > 0 else 0
    before = mean_abs_correlation(Xb) if rank > 0 else 0.0
    if rank < 2:
        raise ValueError(
            f"center_correlation='remove' needs manifold centers spanning at least 2 dimensions "
            f"(found {rank}); use center_correlation='keep'"
        )
    sv = torch.sqrt(evals[:rank])
    U = evecs[:, :rank]
    # Fix eigenvector signs (positive sum of cubes; ties: sign of the largest entry) so that the random starts,
    # and hence the result, do not depend on LAPACK's arbitrary signs (rotation invariance).
    skew = (U ** 3).sum(0)
    big = torch.gather(U, 0, U.abs().argmax(0, keepdim=True)).squeeze(0)
    sign = torch.where(skew.abs() > 1e-9 * (U.abs() ** 3).sum(0), torch.sign(skew), torch.sign(big))
    U = U * torch.where(sign == 0, torch.ones_like(sign), sign)[None, :]
    X = U * sv[None, :]  # (P, rank)
    Q = (Xb.T @ U) / sv[None, :]  # (N, rank) orthonormal basis
    total = torch.cumsum(evals[:rank], 0) / evals[:rank].sum()
    below = (total < 0.95).nonzero()
    rule = (int(below[-1]) if below.numel() else 0) + 11
    limit = rank - 1
    k_max = min(rule if max_k is None else int(max_k), limit)
    if max_k is not None and max_k < 1:
        raise ValueError(f"max_k must be >= 1, got {max_k}")
    if not 0.0 <= rtol < 1.0:
        raise ValueError(f"rtol must be in [0, 1), got {rtol}")
    C = X @ X.T
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    x_norm = torch.linalg.vector_norm(X, dim=1)
    V_mats: list[torch.Tensor] = []
    costs: list[float] = []
    V1: torch.Tensor | None = None
    stalled = 0
    workers = max(1, min(int(workers), n_reps))
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    if optimizer == "reference":
        opt_kw = dict(max_iter=1000 if max_iter is None else int(max_iter), gtol=1e-6 if gtol is None else gtol)

        def solve_batch(Vs: torch.Tensor) -> list[torch.Tensor]:
            return list(_stiefel_cg_manopt_batch(Vs, X, C, **opt_kw))

        def solve_all(starts: list[torch.Tensor]) -> list[torch.Tensor]:
            # Lockstep batches of starts (one for small P; each start's result does not depend on its batch).
            batches = [_stack_starts(starts[b]) for b in _manopt_batches(len(starts), P)]
            solved = pool.map(solve_batch, batches) if pool is not None else map(solve_batch, batches)
            return [V for batch in solved for V in batch]
    else:
        opt_kw = dict(max_iter=300 if max_iter is None else int(max_iter), gtol=1e-6 if gtol is None else gtol,
                      ftol=ftol)

        def solve(V0: torch.Tensor) -> torch.Tensor:
            return _stiefel_cg(V0, X, C, **opt_kw)

        def solve_all(starts: list[torch.Tensor]) -> list[torch.Tensor]:
            return list(pool.map(solve, starts)) if pool is not None else [solve(V0) for V0 in starts]
    t_start = time.perf_counter()
    try:
        for k in range(1, k_max + 1):
            starts = []
            for _ in range(n_reps):
                if start == "random":
                    Z = torch.randn(rank, k, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
                    starts.append(_qf(Z))
                else:
                    s = torch.randn(P, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
                    sX = (s @ X)[:, None]
                    starts.append(_qf(sX if V1 is None else torch.cat([sX, V1], dim=1)))
            solutions = solve_all(starts)
            # The most stable start: the largest smallest fraction of a center's norm left after the removal.
            best_stab, best_V = -1.0, None
            for V in solutions:
                R = X - (X @ V) @ V.T
                stab = float((torch.linalg.vector_norm(R, dim=1) / x_norm).min())
                if stab > best_stab:
                    best_stab, best_V = stab, V
            assert best_V is not None
            V1 = best_V
            R = X - (X @ V1) @ V1.T
            V_mats.append(V1)
            costs.append(mean_abs_correlation(R))
            _log.info("center search: K=%d of at most %d, mean |corr| %.6g, %.1f s", k, k_max, costs[-1],
                      time.perf_counter() - t_start)
            if len(costs) > 1 and costs[-1] > costs[-2] * (1.0 - rtol):
                stalled += 1
            else:
                stalled = 0
            if len(costs) > 4 and stalled >= 3:
                break
    finally:
        if pool is not None:
            pool.shutdown()
    # The best K before the final run of non-improvements (for rtol = 0 that run only rises: the overall minimum).
    K = int(np.argmin(costs[:len(costs) - stalled])) + 1
    V_best = V_mats[K - 1]
    if polish:
        V_best = _stiefel_cg(V_best, X, C, max_iter=polish_iter, gtol=1e-10, ftol=1e-14)
    directions = Q @ V_best
    return CenterStructure(directions=directions, K=K, correlation_before=before,
                           correlation_after=np.asarray(costs), max_k=k_max)
