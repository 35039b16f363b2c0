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
:func:`_stiefel_cg_manopt`), ``rtol = 0`` (three rises in a row, then the overall minimum), no refinement of the
selected directions. Options that are not the reference's, each with its measured effect in the README
("MFTMA"): ``start="warm"`` with ``optimizer="fast"`` (warm starts from the ``K - 1`` solution and our
Polak-Ribiere conjugate gradient with a plateau stop), ``rtol = 0.01`` (ends the search on the slow decline
that fitting noise gives with many manifolds) and ``polish`` (a tight-tolerance refinement of the selected
directions).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._threads import single_thread

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


def _cost_state(V: torch.Tensor, X: torch.Tensor, C: torch.Tensor
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Cost 1/2 sum_{mn} Gr_mn^2 / (c0_m c0_n) and what its gradient needs.

    ``Gr = C - (XV)(XV)^T`` is the Gram matrix of the residual centers and ``c0 = diag(Gr)``. Two passes over
    ``P x P`` arrays (one fused ``addmm``, one square) and a matrix-vector product.
    """
    c = X @ V
    Gr = torch.addmm(C, c, c.T, alpha=-1.0)
    u = 1.0 / torch.diagonal(Gr).clamp_min(torch.finfo(X.dtype).tiny)
    q = (Gr * Gr) @ u  # q_m = sum_n Gr_mn^2 / c0_n
    return 0.5 * (u @ q), (c, Gr, u, q)


def _grad_from_state(X: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
                     ) -> torch.Tensor:
    """Euclidean gradient in ``V`` of the cost, from :func:`_cost_state`'s intermediate values.

    With ``u = 1 / c0``: ``d cost / d c = -2 U Gr U c + 2 h c``, ``h_m = u_m^2 q_m``; then ``X^T`` of that.
    """
    c, Gr, u, q = state
    grad_c = -2.0 * u[:, None] * (Gr @ (c * u[:, None])) + 2.0 * (u * u * q)[:, None] * c
    return X.T @ grad_c


def _cost_and_grad(V: torch.Tensor, X: torch.Tensor, C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cost 1/2 sum_{mn} Gr_mn^2 / (c0_m c0_n) and its Euclidean gradient in V (see :func:`_cost_state`)."""
    f, state = _cost_state(V, X, C)
    return f, _grad_from_state(X, state)


def _qf(A: torch.Tensor) -> torch.Tensor:
    Q, R = torch.linalg.qr(A)
    s = torch.sign(torch.diagonal(R))
    s = torch.where(s == 0, torch.ones_like(s), s)
    return Q * s[None, :]


def _stiefel_cg(V: torch.Tensor, X: torch.Tensor, C: torch.Tensor, max_iter: int, gtol: float, ftol: float = 1e-10
                ) -> torch.Tensor:
    """Riemannian conjugate gradient (Polak-Ribiere+, Armijo backtracking, QR retraction) on St(n, K)."""

    def rgrad(V: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
        VtE = V.T @ E
        return E - V @ (0.5 * (VtE + VtE.T))

    def proj(V: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
        return rgrad(V, Z)

    f, E = _cost_and_grad(V, X, C)
    g = rgrad(V, E)
    d = -g
    gg = float((g * g).sum())
    step = 1.0 / max(gg ** 0.5, 1e-12)
    history = [float(f)]
    for _ in range(max_iter):
        if gg ** 0.5 < gtol * max(1.0, abs(float(f))):
            break
        slope = float((g * d).sum())
        if slope >= 0:  # not a descent direction: restart with steepest descent
            d = -g
            slope = -gg
        t = step
        accepted = False
        for _ls in range(40):
            V_new = _qf(V + t * d)
            f_new, state = _cost_state(V_new, X, C)  # trial points: the cost only
            if float(f_new) <= float(f) + 1e-4 * t * slope:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        E_new = _grad_from_state(X, state)
        g_new = rgrad(V_new, E_new)
        g_old_t = proj(V_new, g)
        d_t = proj(V_new, d)
        gg_new = float((g_new * g_new).sum())
        beta = max(0.0, float((g_new * (g_new - g_old_t)).sum()) / max(gg, 1e-300))
        V, f, g, gg = V_new, f_new, g_new, gg_new
        d = -g + beta * d_t
        step = 2.0 * t
        history.append(float(f))
        # Stop on a plateau: relative decrease over the last 5 iterations below ftol.
        if len(history) > 5 and history[-6] - history[-1] <= ftol * abs(history[-1]):
            break
    return V


def _stiefel_cg_manopt(V: torch.Tensor, X: torch.Tensor, C: torch.Tensor, max_iter: int = 1000,
                       gtol: float = 1e-6, min_step: float = 1e-10) -> torch.Tensor:
    """The reference's optimizer (see :func:`_stiefel_cg_manopt_torch`): on CPU the same iteration in numpy.

    The search runs ~1000 iterations per start, 10 starts per ``K``, on small arrays (``P x P`` and ``rank x K``):
    its time is mostly the per-call overhead of some 70 array operations per iteration, which numpy's is a few
    times below torch's (about 2x faster end to end). Both run the same operations in the same order; results
    agree to rounding over a few dozen iterations (``tests/test_geometry.py``). Over hundreds of iterations of a
    search that has not converged rounding differences grow (the directions differ by up to ~1e-2 after 1000
    iterations at K = 5-10, as between any two implementations, the reference's autograd one included).
    """
    if V.device.type != "cpu":
        return _stiefel_cg_manopt_torch(V, X, C, max_iter=max_iter, gtol=gtol, min_step=min_step)
    out = _stiefel_cg_manopt_numpy(V.detach().numpy(), X.detach().numpy(), C.detach().numpy(), max_iter=max_iter,
                                   gtol=gtol, min_step=min_step)
    return torch.from_numpy(out)


def _stiefel_cg_manopt_numpy(V: np.ndarray, X: np.ndarray, C: np.ndarray, max_iter: int = 1000,
                             gtol: float = 1e-6, min_step: float = 1e-10) -> np.ndarray:
    """:func:`_stiefel_cg_manopt_torch` in numpy, operation for operation (CPU; see :func:`_stiefel_cg_manopt`)."""
    tiny = np.finfo(X.dtype).tiny
    XT = np.ascontiguousarray(X.T)

    def cost(V: np.ndarray) -> tuple[float, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        c = X @ V
        Gr = C - c @ c.T
        u = 1.0 / np.maximum(np.diagonal(Gr), tiny)
        q = (Gr * Gr) @ u
        return float(0.5 * (u @ q)), (c, Gr, u, q)

    def egrad(state: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        c, Gr, u, q = state
        grad_c = -2.0 * u[:, None] * (Gr @ (c * u[:, None])) + 2.0 * (u * u * q)[:, None] * c
        return XT @ grad_c

    return _manopt_cg(V, cost, egrad, _qf_numpy, lambda a, b: float(np.vdot(a, b)),
                      lambda a: float(np.linalg.norm(a)), max_iter=max_iter, gtol=gtol, min_step=min_step)


def _qf_numpy(A: np.ndarray) -> np.ndarray:
    Q, R = np.linalg.qr(A)
    s = np.sign(np.diagonal(R))
    return Q * np.where(s == 0, 1.0, s)


def _stiefel_cg_manopt_torch(V: torch.Tensor, X: torch.Tensor, C: torch.Tensor, max_iter: int = 1000,
                             gtol: float = 1e-6, min_step: float = 1e-10) -> torch.Tensor:
    """The reference's optimizer: pymanopt 0.2.x ``ConjugateGradient`` with its defaults, written out.

    Hestenes-Stiefel+ conjugate gradient, pymanopt's adaptive backtracking line search (sufficient decrease 0.5,
    contraction 0.5, at most 10 trial reductions, next trial step twice the last accepted one unless exactly one
    reduction was needed), QR retraction with positive ``diag(R)`` and projection as vector transport; stops
    when ``iteration + 1 >= max_iter`` (1000: at most 999 steps), the Riemannian gradient norm falls below
    ``gtol`` (absolute, 1e-6) or a step is shorter than ``min_step`` (1e-10; a failed line search is a step of
    0). The reference (``CGmanopt``) passes none of the options ``fun_FA`` builds (``max_iter=20000``,
    ``gtol``/``xtol``/``ftol``), so these pymanopt defaults are what it runs; pymanopt's 1000 s time limit is
    left out. The cost and gradient are computed in torch (:func:`_cost_state`).
    """

    def cost(V: torch.Tensor) -> tuple[float, tuple]:
        f, state = _cost_state(V, X, C)
        return float(f), state

    return _manopt_cg(V, cost, lambda state: _grad_from_state(X, state), _qf, lambda a, b: float((a * b).sum()),
                      lambda a: float(torch.linalg.vector_norm(a)), max_iter=max_iter, gtol=gtol,
                      min_step=min_step)


def _manopt_cg(V: Any, cost: Callable, egrad: Callable, retract: Callable, dot: Callable, norm: Callable, *,
               max_iter: int, gtol: float, min_step: float) -> Any:
    """pymanopt 0.2's ``ConjugateGradient`` iteration (see :func:`_stiefel_cg_manopt_torch`), for numpy or torch.

    ``cost(V) -> (f, state)``, ``egrad(state)`` the Euclidean gradient, ``retract`` the QR retraction, ``dot`` and
    ``norm`` the inner product and norm of the array library: the one loop both backends run.
    """

    def rgrad(V: Any, E: Any) -> Any:
        VtE = V.T @ E
        return E - V @ (0.5 * (VtE + VtE.T))

    f, state = cost(V)
    g = rgrad(V, egrad(state))
    gg = dot(g, g)
    d = -g
    old_alpha: float | None = None
    step = float("nan")
    it = 0
    while True:
        if it + 1 >= max_iter or gg ** 0.5 < gtol or step < min_step:
            break
        df0 = dot(g, d)
        if df0 >= 0:
            d, df0 = -g, -gg
        norm_d = norm(d)
        alpha = old_alpha if old_alpha is not None else 1.0 / norm_d
        V_new = retract(V + alpha * d)
        f_new, state_new = cost(V_new)
        evals = 1
        while f_new > f + 0.5 * alpha * df0 and evals <= 10:
            alpha *= 0.5
            V_new = retract(V + alpha * d)
            f_new, state_new = cost(V_new)
            evals += 1
        if f_new > f:
            alpha, V_new, f_new, state_new = 0.0, V, f, state
        step = alpha * norm_d
        old_alpha = alpha if evals == 2 else 2.0 * alpha
        g_new = rgrad(V_new, egrad(state_new))
        gg_new = dot(g_new, g_new)
        g_old = rgrad(V_new, g)  # transport: projection onto the new tangent space
        d = rgrad(V_new, d)
        diff = g_new - g_old
        denom = dot(diff, d)
        beta = max(0.0, dot(g_new, diff) / denom) if denom != 0 else 0.0
        d = -g_new + beta * d
        V, f, state, g, gg = V_new, f_new, state_new, g_new, gg_new
        it += 1
    return V


def center_structure(centers: torch.Tensor, **kwargs) -> CenterStructure:
    """Find the low-rank center structure to remove (see the module docstring and ``_center_structure``).

    On CPU every kernel runs on one torch thread and the ``n_reps`` random starts of each ``K`` run concurrently
    in Python threads (``workers``, default ``torch.get_num_threads()``): the per-iteration kernels are small
    (``P x P`` passes), and on a loaded machine OpenMP barriers cost more than they gain (a P=1000 search spent
    up to 145 s on one ``K`` with 2 OpenMP threads at load 5, 4-8 s on one thread).
    """
    on_cpu = centers.device.type == "cpu"
    if on_cpu:
        kwargs.setdefault("workers", torch.get_num_threads())
    with single_thread(on_cpu), _single_thread_blas(on_cpu):
        return _center_structure(centers, **kwargs)


@contextlib.contextmanager
def _single_thread_blas(enabled: bool) -> Iterator[None]:
    """numpy's BLAS on one thread inside the block (the CPU search runs in numpy: :func:`_stiefel_cg_manopt`).

    OpenBLAS splits a matrix-vector product of 100 x 100 across threads; on these tiny kernels that is the
    barrier cost :func:`single_thread` avoids for torch. Without threadpoolctl (a scikit-learn dependency) the
    BLAS keeps its own setting.
    """
    if not enabled:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


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
        ``"reference"`` (default): :func:`_stiefel_cg_manopt`, ``max_iter`` 1000 and absolute gradient tolerance
        ``gtol`` 1e-6. ``"fast"``: :func:`_stiefel_cg` (Polak-Ribiere+, Armijo), ``max_iter`` 300, ``gtol`` 1e-6
        relative to the cost, and a plateau stop (``ftol``: relative decrease over 5 iterations).
    max_iter, gtol, ftol
        Per-start optimizer limits (``None``: the optimizer's default above; ``ftol`` only for ``"fast"``).
    polish
        Refine the selected ``K``'s directions to a tight tolerance (``polish_iter`` iterations of
        :func:`_stiefel_cg`, gradient tolerance 1e-10) before returning them. A step the reference does not
        take; it can move the directions far from the selected start (see :func:`geometry.capacity`).
    workers
        Python threads running the starts of one ``K`` concurrently (the result does not depend on it: the
        starts are drawn in the same order and compared in that order).
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

        def solve(V0: torch.Tensor) -> torch.Tensor:
            return _stiefel_cg_manopt(V0, X, C, **opt_kw)
    else:
        opt_kw = dict(max_iter=300 if max_iter is None else int(max_iter), gtol=1e-6 if gtol is None else gtol,
                      ftol=ftol)

        def solve(V0: torch.Tensor) -> torch.Tensor:
            return _stiefel_cg(V0, X, C, **opt_kw)
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
            solutions = list(pool.map(solve, starts)) if pool is not None else [solve(V0) for V0 in starts]
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
