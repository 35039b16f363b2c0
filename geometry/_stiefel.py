"""Optimizers of the center-correlation search on the Stiefel manifold (see ``_center``).

The cost of directions ``V`` (``rank x K``, orthonormal columns) is ``1/2 sum_{mn} Gr_mn^2 / (c0_m c0_n)``, where
``Gr = C - (XV)(XV)^T`` is the Gram matrix of the residual centers and ``c0 = diag(Gr)``. Two optimizers:

- :func:`_stiefel_cg_manopt_batch`, the reference's: pymanopt 0.2's conjugate gradient with its default
  stopping rules, written out as one loop (:func:`_manopt_cg`) that runs a batch of random starts in lockstep,
  in numpy on CPU (a few times less per-call overhead than torch; these are small arrays) and in torch elsewhere;
- :func:`_stiefel_cg`, our faster one (Polak-Ribiere+, Armijo backtracking, plateau stop), in torch.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import torch

__all__: list[str] = []

try:  # the two LAPACK gufuncs behind numpy.linalg.qr, without its Python-level checks (~20 us a call)
    from numpy.linalg import _umath_linalg as _lapack
    _QR_GUFUNCS = hasattr(_lapack, "qr_r_raw") and hasattr(_lapack, "qr_reduced")
except ImportError:  # pragma: no cover - numpy always has it so far
    _QR_GUFUNCS = False


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
    """Q factor of ``A`` (or of each matrix of a batch) with a positive ``diag(R)``."""
    Q, R = torch.linalg.qr(A)
    s = torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))
    s = torch.where(s == 0, torch.ones_like(s), s)
    return Q * s[..., None, :]


def _stiefel_cg(V: torch.Tensor, X: torch.Tensor, C: torch.Tensor, max_iter: int, gtol: float, ftol: float = 1e-10
                ) -> torch.Tensor:
    """Riemannian conjugate gradient (Polak-Ribiere+, Armijo backtracking, QR retraction) on St(n, K)."""

    def rgrad(V: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
        VtE = V.T @ E
        return E - V @ (0.5 * (VtE + VtE.T))

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
        g_new = rgrad(V_new, _grad_from_state(X, state))
        g_old_t = rgrad(V_new, g)  # transport: projection onto the new tangent space
        d_t = rgrad(V_new, d)
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


class _NumpyOps:
    """The batched CG's array operations in numpy, on ``(B, rank, K)`` stacks (CPU).

    Every matrix product of a stack is the BLAS call numpy makes for one matrix of it (``matmul`` loops over
    the stack), so each start's iterates are bit for bit those of a solve on its own.
    """

    def __init__(self, X: np.ndarray, C: np.ndarray) -> None:
        self.X, self.XT, self.C = X, np.ascontiguousarray(X.T), C
        self.tiny = np.finfo(X.dtype).tiny

    @staticmethod
    def swap(a: np.ndarray) -> np.ndarray:
        return a.swapaxes(-1, -2)

    sub = staticmethod(np.subtract)

    @staticmethod
    def outer(c: np.ndarray) -> np.ndarray:
        """``c c^T`` per matrix: numpy's ``syrk``, or for one column the products themselves (the same numbers)."""
        if c.shape[-1] == 1:
            return c * c.swapaxes(-1, -2)
        return c @ c.swapaxes(-1, -2)

    def diag_floor(self, a: np.ndarray) -> np.ndarray:
        return np.maximum(np.diagonal(a, axis1=-2, axis2=-1), self.tiny)

    @staticmethod
    def host(a: np.ndarray) -> np.ndarray:
        return a

    @staticmethod
    def col(x: np.ndarray) -> np.ndarray:
        return x[:, None, None]

    @staticmethod
    def index(rows: np.ndarray) -> np.ndarray:
        return rows

    @staticmethod
    def where(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(mask[:, None, None], a, b)

    @staticmethod
    def stack(arrays: list[np.ndarray]) -> np.ndarray:
        return np.stack(arrays)

    @staticmethod
    def retract(A: np.ndarray) -> np.ndarray:
        """``numpy.linalg.qr``'s Q (the same LAPACK calls) with a positive ``diag(R)``, matrix by matrix."""
        if not _QR_GUFUNCS:  # pragma: no cover
            Q, R = np.linalg.qr(A)
            s = np.sign(np.diagonal(R, axis1=-2, axis2=-1))
            return Q * np.where(s == 0, 1.0, s)[..., None, :]
        a = A.copy()
        tau = _lapack.qr_r_raw(a, signature="d->d")
        Q = _lapack.qr_reduced(a, tau, signature="dd->d")
        s = np.sign(np.diagonal(a, axis1=-2, axis2=-1))  # diag(R): R is left in the upper triangle of a
        return Q * np.where(s == 0, 1.0, s)[..., None, :]


class _TorchOps(_NumpyOps):
    """The batched CG's array operations in torch (any device); per-start scalars stay in numpy on the host."""

    def __init__(self, X: torch.Tensor, C: torch.Tensor) -> None:
        self.X, self.XT, self.C = X, X.T, C
        self.tiny = torch.finfo(X.dtype).tiny

    @staticmethod
    def swap(a: torch.Tensor) -> torch.Tensor:
        return a.mT

    sub = staticmethod(torch.sub)

    @staticmethod
    def outer(c: torch.Tensor) -> torch.Tensor:
        return c @ c.mT

    def diag_floor(self, a: torch.Tensor) -> torch.Tensor:
        return torch.diagonal(a, dim1=-2, dim2=-1).clamp_min(self.tiny)

    @staticmethod
    def host(a: torch.Tensor) -> np.ndarray:
        return a.detach().to(dtype=torch.float64, device="cpu").numpy()

    def col(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=self.X.dtype, device=self.X.device)[:, None, None]

    def index(self, rows: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(rows, device=self.X.device)

    def where(self, mask: np.ndarray, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(torch.as_tensor(mask, device=self.X.device)[:, None, None], a, b)

    @staticmethod
    def stack(arrays: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(arrays)

    @staticmethod
    def retract(A: torch.Tensor) -> torch.Tensor:
        return _qf(A)


def _batch_cost(ops: _NumpyOps, V: Any) -> tuple[np.ndarray, tuple]:
    """Costs of a stack ``V`` ``(B, rank, K)`` (host array ``(B,)``) and what their gradients need."""
    c = ops.X @ V
    Gr = ops.outer(c)
    Gr = ops.sub(ops.C, Gr, out=Gr)  # C - c c^T, in place
    u = 1.0 / ops.diag_floor(Gr)
    q = ((Gr * Gr) @ u[..., None])[..., 0]  # q_m = sum_n Gr_mn^2 / c0_n
    return ops.host(0.5 * (u[..., None, :] @ q[..., None])[..., 0, 0]), (c, Gr, u, q)


def _batch_egrad(ops: _NumpyOps, state: tuple) -> Any:
    """Euclidean gradients in ``V`` (see :func:`_grad_from_state`) of a stack, from :func:`_batch_cost`'s state."""
    c, Gr, u, q = state
    grad_c = -2.0 * u[..., None] * (Gr @ (c * u[..., None])) + 2.0 * (u * u * q)[..., None] * c
    return ops.XT @ grad_c


def _batch_rgrad(ops: _NumpyOps, V: Any, E: Any) -> Any:
    """Projection of ``E`` onto the tangent spaces at ``V`` (Riemannian gradient, vector transport)."""
    VtE = ops.swap(V) @ E
    return E - V @ (0.5 * (VtE + ops.swap(VtE)))


def _batch_dot(ops: _NumpyOps, a: Any, b: Any) -> np.ndarray:
    """Inner products ``<a_i, b_i>`` of two stacks, as a host array (one BLAS ``dot`` per pair in numpy)."""
    B = a.shape[0]
    return ops.host((a.reshape(B, 1, -1) @ b.reshape(B, -1, 1))[:, 0, 0])


def _manopt_cg(V: Any, ops: _NumpyOps, *, max_iter: int, gtol: float, min_step: float) -> Any:
    """pymanopt 0.2's ``ConjugateGradient`` iteration, for a stack of starts ``V`` ``(B, rank, K)`` in lockstep.

    Hestenes-Stiefel+ conjugate gradient, pymanopt's adaptive backtracking line search (sufficient decrease 0.5,
    contraction 0.5, at most 10 trial reductions, next trial step twice the last accepted one unless exactly one
    reduction was needed), QR retraction with positive ``diag(R)`` and projection as vector transport; a start
    stops when ``iteration + 1 >= max_iter`` (1000: at most 999 steps), its Riemannian gradient norm falls below
    ``gtol`` (absolute, 1e-6) or a step is shorter than ``min_step`` (1e-10; a failed line search is a step of
    0). The reference (``CGmanopt``) passes none of the options ``fun_FA`` builds (``max_iter=20000``,
    ``gtol``/``xtol``/``ftol``), so these pymanopt defaults are what it runs; pymanopt's 1000 s time limit is
    left out. Per-start scalars (costs, step sizes, inner products) are numpy arrays on the host and follow each
    start's own decisions, so each start's result is that of a solve on its own; the array work of all live
    starts is one batched call per operation (``ops``: :class:`_NumpyOps` or :class:`_TorchOps`).
    """
    live = np.arange(V.shape[0])
    done: list[Any] = [None] * V.shape[0]
    f, state = _batch_cost(ops, V)
    g = _batch_rgrad(ops, V, _batch_egrad(ops, state))
    gg = _batch_dot(ops, g, g)
    d = -g
    old_alpha = np.zeros(0)
    step = np.full(live.size, np.nan)
    it = 0
    while True:
        stop = np.array([it + 1 >= max_iter or x ** 0.5 < gtol or s < min_step
                         for x, s in zip(gg.tolist(), step.tolist())])
        if stop.any():  # finished starts leave the batch
            for j in np.flatnonzero(stop):
                done[live[j]] = V[j]
            keep = np.flatnonzero(~stop)
            if keep.size == 0:
                break
            ix = ops.index(keep)
            live, V, g, d, state = live[keep], V[ix], g[ix], d[ix], tuple(s[ix] for s in state)
            f, gg, step, old_alpha = f[keep], gg[keep], step[keep], old_alpha[keep] if it else old_alpha
        df0 = _batch_dot(ops, g, d)
        turn = df0 >= 0
        if turn.any():  # not a descent direction: steepest descent
            d, df0 = ops.where(turn, -g, d), np.where(turn, -gg, df0)
        norm_d = np.sqrt(_batch_dot(ops, d, d))
        alpha = 1.0 / norm_d if it == 0 else old_alpha.copy()
        V_new = ops.retract(V + ops.col(alpha) * d)
        f_new, state_new = _batch_cost(ops, V_new)
        evals = np.ones(live.size, dtype=np.int64)
        while True:
            back = np.flatnonzero((f_new > f + 0.5 * alpha * df0) & (evals <= 10))
            if back.size == 0:
                break
            ix = ops.index(back)
            alpha[back] *= 0.5
            V_new[ix] = ops.retract(V[ix] + ops.col(alpha[back]) * d[ix])
            f_new[back], trial = _batch_cost(ops, V_new[ix])
            for s_new, s_trial in zip(state_new, trial):
                s_new[ix] = s_trial
            evals[back] += 1
        worse = np.flatnonzero(f_new > f)
        if worse.size:  # failed line search: stay (a step of 0)
            ix = ops.index(worse)
            alpha[worse], V_new[ix], f_new[worse] = 0.0, V[ix], f[worse]
            for s_new, s_old in zip(state_new, state):
                s_new[ix] = s_old[ix]
        step = alpha * norm_d
        old_alpha = np.where(evals == 2, alpha, 2.0 * alpha)
        g_new = _batch_rgrad(ops, V_new, _batch_egrad(ops, state_new))
        gg_new = _batch_dot(ops, g_new, g_new)
        d = _batch_rgrad(ops, V_new, d)
        diff = g_new - _batch_rgrad(ops, V_new, g)  # transport of g: projection onto the new tangent space
        denom = _batch_dot(ops, diff, d)
        ratio = np.divide(_batch_dot(ops, g_new, diff), denom, out=np.zeros_like(denom), where=denom != 0)
        beta = np.where(ratio > 0.0, ratio, 0.0)
        d = -g_new + ops.col(beta) * d
        V, f, state, g, gg = V_new, f_new, state_new, g_new, gg_new
        it += 1
    return ops.stack(done)


#: Largest ``B * P * P`` of one lockstep batch (:func:`_manopt_batches`): bigger problems run in smaller batches
#: (their arrays, not the per-call overhead that batching saves, dominate there).
_BATCH_ELEMENTS = 2 ** 20


def _manopt_batches(n: int, P: int) -> list[slice]:
    """``n`` starts of a problem with ``P`` centers in lockstep batches of near-equal size (see ``_BATCH_ELEMENTS``)."""
    count = -(-n // max(1, _BATCH_ELEMENTS // (P * P)))
    bounds = np.linspace(0, n, count + 1).round().astype(int)
    return [slice(lo, hi) for lo, hi in pairwise(bounds.tolist())]


def _stack_starts(starts: list[torch.Tensor]) -> torch.Tensor:
    """Starts ``(rank, K)`` stacked into ``(B, rank, K)``, each keeping its memory layout.

    The first iteration's matrix products read the start as it is laid out (``_qf`` gives column-major
    matrices), and BLAS rounds a product of a column-major operand differently from a row-major copy of it.
    """
    if all(V.mT.is_contiguous() for V in starts):
        return torch.stack([V.mT for V in starts]).mT
    return torch.stack(starts)


def _stiefel_cg_manopt_batch(V: torch.Tensor, X: torch.Tensor, C: torch.Tensor, max_iter: int = 1000,
                             gtol: float = 1e-6, min_step: float = 1e-10) -> torch.Tensor:
    """The reference's optimizer (:func:`_manopt_cg`) for a stack of starts ``V`` ``(B, rank, K)`` in lockstep.

    On CPU it runs in numpy: the search runs ~1000 iterations per start on small arrays (``P x P`` and
    ``rank x K``), so its time is mostly per-call overhead, which numpy's is a few times below torch's and which
    running the starts in lockstep shares between them. Elsewhere it runs in torch. Each start's result is that
    of a solve on its own (bit for bit in numpy); numpy and torch agree to rounding over a few dozen iterations
    (``tests/test_geometry.py``). Over hundreds of iterations of a search that has not converged rounding
    differences grow (the directions differ by up to ~1e-2 after 1000 iterations at K = 5-10, as between any
    two implementations, the reference's autograd one included).
    """
    kw = {"max_iter": max_iter, "gtol": gtol, "min_step": min_step}
    if V.device.type != "cpu":
        return _manopt_cg(V, _TorchOps(X, C), **kw)
    out = _manopt_cg(V.detach().numpy(), _NumpyOps(X.detach().numpy(), C.detach().numpy()), **kw)
    return torch.from_numpy(out)


def _stiefel_cg_manopt(V: torch.Tensor, X: torch.Tensor, C: torch.Tensor, max_iter: int = 1000,
                       gtol: float = 1e-6, min_step: float = 1e-10) -> torch.Tensor:
    """The reference's optimizer from one start ``V`` ``(rank, K)`` (see :func:`_stiefel_cg_manopt_batch`)."""
    return _stiefel_cg_manopt_batch(V[None], X, C, max_iter=max_iter, gtol=gtol, min_step=min_step)[0]


def _stiefel_cg_manopt_torch(V: torch.Tensor, X: torch.Tensor, C: torch.Tensor, max_iter: int = 1000,
                             gtol: float = 1e-6, min_step: float = 1e-10) -> torch.Tensor:
    """The reference's optimizer from one start in torch, on any device (on CPU: the check of the numpy path)."""
    return _manopt_cg(V[None], _TorchOps(X, C), max_iter=max_iter, gtol=gtol, min_step=min_step)[0]
