"""Batched non-negative least squares for the MFTMA anchor-point problem, and per-sample reference solvers.

The per-sample problem of mean-field manifold analysis (Chung, Lee & Sompolinsky 2018) is, for manifold points
``S_mu`` (columns of ``S``, shape ``(d, m)``) and a Gaussian sample ``t``:

    F(t) = min_V ||V - t||^2   subject to   V . S_mu <= -kappa  for every point mu.

Every column of ``S`` has a last ("center") coordinate equal to 1, so ``V . S_mu + kappa = (V + kappa e_c) . S_mu``.
With ``V' = V + kappa e_c`` and ``t' = t + kappa e_c`` the problem becomes the projection of ``t'`` on the polar
cone of ``cone(S)``, whose dual is the non-negative least squares problem

    a* = argmin_{a >= 0} ||S a - t'||^2,      F(t) = ||S a*||^2,      V* = t - S a*,

for every ``kappa >= 0``. The fast path below solves many such problems at once (many samples of many manifolds)
in torch, so that it runs on CPU or GPU:

1. samples with ``max_mu S_mu . t' <= 0`` have ``a* = 0`` (``t`` already satisfies the constraints);
2. a warm start: every sample's best single point ``a_j = b_j / G_jj`` and its KKT check in one batched
   product (where the anchor is one point, as for small manifolds far from the origin, this certifies the
   exact solution); where fewer than a quarter of the samples were certified that way (large supports), the
   others start instead from accelerated projected gradient (FISTA) on the Jacobi-scaled problem, all samples
   at once with batched matrix products;
3. a few primal-dual active-set rounds from the warm start's support: each solves the least squares problem
   exactly on every sample's passive set and swaps all variables that violate the KKT conditions at once;
   samples whose KKT conditions hold (below) are done;
4. for the rest (few), Lawson-Hanson active-set iterations from the feasible part of the last iterate: each
   iteration solves the unconstrained least squares problem exactly on every sample's passive set (Cholesky of
   the gathered Gram block, one step of iterative refinement), steps back to feasibility or adds the most
   violating variable.
A sample stops when its KKT conditions hold: ``a_P > 0`` solves the passive block exactly and the gradient
``S^T (t' - S a)`` is ``<= tol`` on every inactive variable. This is the exact solution, certified; steps 2 and
3 only decide where the search starts.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch

from ._nnls_reference import _nnls_gram

__all__: list[str] = []  # private module: nnls_batched, GramOperator


@dataclass
class NNLSInfo:
    """Diagnostics of a batched solve."""

    n_samples: int = 0
    n_trivial: int = 0
    n_active_set_iterations: int = 0
    n_restarted: int = 0
    n_fallback: int = 0
    n_single: int = 0


def _cholesky_solve_gathered(G_pp: torch.Tensor, b_p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve ``G_pp z = b_p`` for a batch of SPD blocks; one step of iterative refinement.

    Returns the solution and a boolean ``ok`` per batch item (False where the block is numerically singular).
    """
    L, info = torch.linalg.cholesky_ex(G_pp)
    ok = info == 0
    # Relative pivot check: a tiny pivot means dependent columns (rank-deficient passive set).
    diag_L = torch.diagonal(L, dim1=-2, dim2=-1)
    diag_G = torch.diagonal(G_pp, dim1=-2, dim2=-1).clamp_min(torch.finfo(G_pp.dtype).tiny)
    ok = ok & ((diag_L * diag_L) > 1e-11 * diag_G).all(dim=-1)
    if not bool(ok.all()):
        eye = torch.eye(G_pp.shape[-1], dtype=G_pp.dtype, device=G_pp.device)
        L = torch.where(ok[:, None, None], L, eye)
    rhs = b_p.unsqueeze(-1)
    y = torch.linalg.solve_triangular(L, rhs, upper=False)
    z = torch.linalg.solve_triangular(L.transpose(-2, -1), y, upper=True)
    r = rhs - G_pp @ z
    y = torch.linalg.solve_triangular(L, r, upper=False)
    z = z + torch.linalg.solve_triangular(L.transpose(-2, -1), y, upper=True)
    return z.squeeze(-1), ok


class GramOperator:
    """The Gram matrices ``G_p = S_p^T S_p`` of ``P`` manifolds, dense ``(P, m, m)`` or factored ``S`` ``(P, d, m)``.

    The factored form is used when a manifold has more points than coordinates (``d < m``): products then cost
    ``O(d m)`` instead of ``O(m^2)`` per sample.
    """

    def __init__(self, G: torch.Tensor | None = None, S: torch.Tensor | None = None) -> None:
        if (G is None) == (S is None):
            raise ValueError("give exactly one of G (dense Gram) or S (factor)")
        self.G, self.S = G, S
        ref = G if G is not None else S
        assert ref is not None
        self.dtype, self.device = ref.dtype, ref.device
        self.P, self.m = ref.shape[0], ref.shape[-1]
        self._padded: torch.Tensor | None = None

    @property
    def factored(self) -> bool:
        return self.S is not None

    def diag(self) -> torch.Tensor:
        if self.G is not None:
            return torch.diagonal(self.G, dim1=-2, dim2=-1)
        assert self.S is not None
        return (self.S * self.S).sum(1)

    def dense(self, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Dense ``D G D`` with ``D = diag(scale)`` (only used where ``m`` is small)."""
        G = self.G if self.G is not None else torch.bmm(self.S.transpose(1, 2), self.S)
        if scale is not None:
            G = G * scale[:, :, None] * scale[:, None, :]
        return G

    def times(self, a: torch.Tensor) -> torch.Tensor:
        """``a G`` for ``a`` ``(P, n, m)``."""
        if self.G is not None:
            return torch.bmm(a, self.G)  # G symmetric
        assert self.S is not None
        return torch.bmm(torch.bmm(a, self.S.transpose(1, 2)), self.S)

    def times_rows(self, a: torch.Tensor, man: torch.Tensor) -> torch.Tensor:
        """``G[man_i] a_i`` for flat rows ``a`` ``(B, m)``."""
        B, m = a.shape
        out = torch.empty_like(a)
        per = self.G.shape[-1] ** 2 if self.G is not None else self.S.shape[1] * m
        chunk = max(1, 2**23 // per)
        for s in range(0, B, chunk):
            r = slice(s, s + chunk)
            if self.G is not None:
                out[r] = (self.G[man[r]] @ a[r].unsqueeze(-1)).squeeze(-1)
            else:
                Sm = self.S[man[r]]
                out[r] = (Sm.transpose(1, 2) @ (Sm @ a[r].unsqueeze(-1))).squeeze(-1)
        return out

    def block(self, man: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Gathered blocks ``G[man_i][order_i][:, order_i]``, ``(B, k, k)``; an index ``m`` (padding) stands for a
        row and column of the identity."""
        if self._padded is None:  # one more point, of zero coordinates
            self._padded = torch.nn.functional.pad(self.G if self.G is not None else self.S,
                                                   (0, 1, 0, 1) if self.G is not None else (0, 1))
        if self.G is not None:
            Gp = self._padded[man[:, None, None], order[:, :, None], order[:, None, :]]
        else:
            cols = self._padded.transpose(1, 2)[man[:, None], order]  # (B, k, d)
            Gp = cols @ cols.transpose(1, 2)
        Gp.diagonal(dim1=-2, dim2=-1).add_((order == self.m).to(Gp.dtype))
        return Gp


def _fista_warm_start(op: GramOperator, b: torch.Tensor, valid: torch.Tensor, n_iter: int,
                      dtype: torch.dtype | None = None) -> torch.Tensor:
    """Approximate ``argmin_{a>=0} 0.5 a'Ga - b'a`` for all samples by FISTA (Jacobi-scaled, step 1/L).

    ``b`` (P, n, m), ``valid`` (P, m). Runs in ``dtype`` (default: that of ``b``); the result only seeds the exact
    active-set search, so single precision is enough. Dense Gram only.
    """
    work_dtype = dtype or b.dtype
    tiny = torch.finfo(op.dtype).tiny
    d = torch.sqrt(op.diag().clamp_min(tiny))
    d = torch.where(valid, 1.0 / d, torch.zeros_like(d))  # invalid points: scaled out entirely
    Gs = op.dense(d)
    lip = torch.linalg.eigvalsh(Gs)[:, -1].clamp_min(tiny)  # (P,)
    Gs = (Gs / lip[:, None, None]).to(work_dtype)
    bs = (b * d[:, None, :] / lip[:, None, None]).to(work_dtype)
    x = torch.zeros_like(bs)
    y = x
    theta = 1.0
    for _ in range(n_iter):
        g = torch.baddbmm(bs, y, Gs, beta=-1.0)  # gradient (scaled by 1/L)
        x_new = torch.sub(y, g, out=g).clamp_min_(0.0)
        theta_new = 0.5 * (1.0 + (1.0 + 4.0 * theta * theta) ** 0.5)
        y = torch.lerp(x, x_new, 1.0 + (theta - 1.0) / theta_new)
        theta = theta_new
        x = x_new
    return x.to(b.dtype) * d[:, None, :]


def _greedy_start(op: GramOperator, b: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Best single-point solution per sample: ``a_j = b_j / G_jj`` on ``j = argmax_j max(b_j, 0)^2 / G_jj``.

    The exact solution when the anchor is one point, a good passive-set guess when it is a few. ``b`` (P, n, m).
    """
    diag = op.diag().clamp_min(torch.finfo(b.dtype).tiny)[:, None, :].expand_as(b)
    score = torch.where(valid[:, None, :], b.clamp_min(0.0) ** 2 / diag, torch.full_like(b, -1.0))
    j = score.argmax(-1, keepdim=True)
    value = (torch.gather(b, -1, j) / torch.gather(diag, -1, j)).clamp_min(0.0)
    return torch.zeros_like(b).scatter_(-1, j, value)


def _solve_passive(op: GramOperator, man: torch.Tensor, passive: torch.Tensor, b: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Unconstrained least squares on each row's passive set: ``z_P = G_PP^{-1} b_P``, ``z = 0`` elsewhere.

    Rows are grouped by passive-set size so that each group pads to its own largest size. Returns ``z``
    ``(B, m)`` and ``ok`` ``(B,)`` (False where the passive block is numerically singular).
    """
    B, m = b.shape
    dtype, device = b.dtype, b.device
    z = torch.zeros_like(b)
    ok = torch.ones(B, dtype=torch.bool, device=device)
    k = passive.sum(-1)
    # Size classes: each pads to its largest passive set (a Cholesky costs ~k^3, so classes are narrow).
    bounds = [0, 2, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256]
    bounds = [x for x in bounds if x < m] + [m]
    b_pad = torch.nn.functional.pad(b, (0, 1))  # index m: a padding variable, right-hand side 0
    for lo, hi in pairwise(bounds):
        rows = ((k > lo) & (k <= hi)).nonzero().squeeze(-1)
        if rows.numel() == 0:
            continue
        kr = k[rows]
        kmax = int(kr.max())
        order = torch.argsort((~passive[rows]).to(torch.int8), dim=-1, stable=True)[:, :kmax]
        used = torch.arange(kmax, device=device)[None, :] < kr[:, None]
        order = torch.where(used, order, m)  # padding: identity rows/columns of op.block, zero right-hand side
        zp, okr = _cholesky_solve_gathered(op.block(man[rows], order), torch.gather(b_pad[rows], 1, order))
        z[rows] = torch.zeros((rows.numel(), m + 1), dtype=dtype, device=device).scatter_(1, order, zp)[:, :m]
        ok[rows] = okr
    return z * passive, ok


def _gram_times(op: GramOperator, a_full: torch.Tensor, rows: torch.Tensor, man: torch.Tensor,
                P: int, n: int) -> torch.Tensor:
    """``G[man] @ a`` for the given flat rows; a full batched product when many rows ask for it."""
    m = op.m
    if rows.numel() * 32 >= P * n:
        return op.times(a_full.view(P, n, m)).reshape(P * n, m)[rows]
    return op.times_rows(a_full[rows], man[rows])


def _primal_dual_active_set(op: GramOperator, a: torch.Tensor, passive: torch.Tensor, bF: torch.Tensor,
                            validF: torch.Tensor, man: torch.Tensor, tol: torch.Tensor, active: torch.Tensor,
                            rounds: int, info: NNLSInfo, P: int, n: int) -> torch.Tensor:
    """Primal-dual active-set rounds (Hintermueller, Ito & Kunisch 2002) on the rows ``active``; in place.

    Each round solves every row on its passive set ``z_P = G_PP^{-1} b_P`` and computes the gradient
    ``w = b - G z``. A row whose KKT conditions hold (``z_P > 0``, ``w <= tol`` off ``P``) is certified:
    ``a = z`` and it leaves. Otherwise its next passive set is ``{z > 0 on P} | {w > tol off P}`` (every
    violation swapped at once, where Lawson-Hanson adds one variable per iteration). The method is not
    guaranteed to converge for general Gram matrices, so after ``rounds`` rounds the remaining rows are handed
    to Lawson-Hanson from a feasible point: ``a = max(z, 0)`` on the passive set (rows whose passive block was
    singular restart from ``a = 0``). Returns the rows still to solve.
    """
    dtype = bF.dtype
    neg_inf = torch.tensor(-torch.inf, dtype=dtype, device=bF.device)
    zfull = torch.zeros_like(a)
    restarted = []
    for _ in range(rounds):
        info.n_active_set_iterations += 1
        pa = passive[active]
        z, ok = _solve_passive(op, man[active], pa, bF[active])
        zfull[active] = z
        w = bF[active] - _gram_times(op, zfull, active, man, P, n)
        zfull[active] = 0
        w_off = torch.where(validF[active] & ~pa, w, neg_inf)
        viol_off = w_off > tol[active, None]
        viol_on = pa & (z <= 0)
        done = ok & ~viol_off.any(-1) & ~viol_on.any(-1)
        rows = active[done]
        a[rows] = z[done]
        passive[rows] = pa[done]
        bad = active[~ok]
        if bad.numel() > 0:  # dependent passive columns: Lawson-Hanson from a = 0 (it only adds independent ones)
            info.n_restarted += bad.numel()
            a[bad] = 0
            passive[bad] = False
            restarted.append(bad)
        go = ok & ~done
        rows = active[go]
        a[rows] = z[go].clamp_min(0) * pa[go]
        passive[rows] = (pa[go] & ~viol_on[go]) | viol_off[go]
        active = rows
        if active.numel() == 0:
            break
    # Hand-off to Lawson-Hanson: the passive set of a feasible point is its support.
    passive[active] = a[active] > 0
    return torch.cat([active, *restarted])


def nnls_batched(
    op: GramOperator,
    b: torch.Tensor,
    valid: torch.Tensor,
    t_norm2: torch.Tensor,
    *,
    warm_iter: int = 30,
    warm_start: str = "auto",
    warm_dtype: torch.dtype | None = torch.float32,
    rtol: float = 1e-11,
    max_iter: int | None = None,
    pdas_iter: int = 10,
) -> tuple[torch.Tensor, NNLSInfo]:
    """Solve ``min_{a >= 0} ||S a - t||^2`` for many samples of many manifolds, in Gram form.

    Parameters
    ----------
    op
        The Gram matrices ``S^T S`` (dense or factored; rows/columns of padded points are ignored).
    b
        ``(P, n, m)`` right-hand sides ``S^T t`` for ``n`` samples per manifold.
    valid
        ``(P, m)`` bool, False for padding points.
    t_norm2
        ``(P, n)`` squared norms ``||t||^2`` (they set the KKT tolerance scale).
    warm_iter
        FISTA iterations of the warm start (0: plain Lawson-Hanson from ``a = 0``). Only used with a dense
        Gram: with more points than coordinates the optimum has at most ``d`` active points and Lawson-Hanson
        from ``a = 0`` reaches it in about that many iterations.
    warm_start
        ``"greedy"``: start every sample from its best single point (exact where the anchor is one point; those
        samples are certified by one batched KKT check and skip the active-set phase); ``"fista"``: start from
        ``warm_iter`` FISTA iterations; ``"auto"`` (default): greedy, then FISTA for the uncertified samples
        when fewer than a quarter of the non-trivial ones were single points (large supports, dense Gram only).
    warm_dtype
        Precision of the warm start (the active-set phase always runs in the dtype of ``b``).
    rtol
        KKT tolerance on the gradient, relative to ``max_mu ||S_mu|| * ||t||``.
    max_iter
        Cap on Lawson-Hanson iterations (default ``3 m + 20``); samples still unconverged are solved by
        ``scipy.optimize.nnls`` one by one, with a warning and a count in the returned info.
    pdas_iter
        Rounds of the primal-dual active-set phase run before Lawson-Hanson (0: none). Each round solves every
        remaining sample on its passive set and swaps all KKT-violating variables at once; samples it certifies
        are done, the others continue with Lawson-Hanson from the feasible part of the last iterate.

    Returns
    -------
    a : torch.Tensor
        ``(P, n, m)`` optimal weights (zero on padding).
    info : NNLSInfo
    """
    P, n, m = b.shape
    dtype, device = b.dtype, b.device
    info = NNLSInfo(n_samples=P * n)
    if max_iter is None:
        max_iter = 3 * m + 20
    neg_inf = torch.tensor(-torch.inf, dtype=dtype, device=device)
    b_valid = torch.where(valid[:, None, :], b, neg_inf)
    trivial = (b_valid.amax(-1) <= 0).reshape(-1)  # t already feasible: a* = 0
    info.n_trivial = int(trivial.sum())
    colnorm = torch.sqrt(op.diag().clamp_min(0)) * valid
    tol = (rtol * colnorm.amax(-1)[:, None] * torch.sqrt(t_norm2)).reshape(-1)

    if warm_start not in ("auto", "greedy", "fista"):
        raise ValueError(f"warm_start must be 'auto', 'greedy' or 'fista', got {warm_start!r}")
    bF = b.reshape(P * n, m)
    man = torch.arange(P, device=device).repeat_interleave(n)
    validF = valid[man]
    nontrivial = info.n_trivial < P * n
    fista_ok = warm_iter > 0 and not op.factored
    certified = torch.zeros(P * n, dtype=torch.bool, device=device)
    greedy_pdas = False
    if nontrivial and (warm_start in ("auto", "greedy") or not fista_ok):
        # Best single point per sample, and its KKT check (one batched product with G): where the anchor is one
        # point (small manifolds far from the origin: most samples) this is already the certified solution.
        a = _greedy_start(op, b, valid)
        w = torch.where(valid[:, None, :] & (a <= 0), b - op.times(a), neg_inf).reshape(P * n, m)
        a = a.reshape(P * n, m)
        violated = w > tol[:, None]
        certified = ~violated.any(-1) & ~trivial
        info.n_single = int(certified.sum())
        if warm_start == "auto" and fista_ok and info.n_single < 0.25 * (P * n - info.n_trivial):
            # Mostly larger supports: FISTA's passive sets are the better start for the rest.
            a = torch.where(certified[:, None], a,
                            _fista_warm_start(op, b, valid, warm_iter, warm_dtype).reshape(P * n, m))
        else:
            greedy_pdas = pdas_iter > 0
    elif nontrivial and fista_ok:
        a = _fista_warm_start(op, b, valid, warm_iter, warm_dtype).reshape(P * n, m)
    else:
        a = torch.zeros(P * n, m, dtype=dtype, device=device)
    a[trivial] = 0
    passive = (a > 0) & validF
    a = a * passive
    if greedy_pdas:
        # The single-point check already was the first primal-dual round: add every violating variable.
        passive |= violated & ~certified[:, None] & ~trivial[:, None]
    active = (~trivial & ~certified).nonzero().squeeze(-1)
    if pdas_iter > 0 and active.numel() > 0:
        active = _primal_dual_active_set(op, a, passive, bF, validF, man, tol, active, pdas_iter, info, P, n)
    # Lawson-Hanson safeguard (as in the original algorithm): a variable added because its gradient was positive
    # but whose least-squares value then comes out <= 0 (numerically dependent column) is taken back out and
    # banned until the next genuine step, so the method cannot cycle.
    last = torch.full((P * n,), -1, dtype=torch.long, device=device)
    banned = torch.zeros((P * n, m), dtype=torch.bool, device=device)
    n_iter = 0
    while active.numel() > 0 and n_iter < max_iter:
        n_iter += 1
        pa = passive[active]
        z, ok = _solve_passive(op, man[active], pa, bF[active])
        if not bool(ok.all()):
            # Dependent passive columns (possible from the warm start when points are degenerate): restart those
            # samples from a = 0; Lawson-Hanson then only ever adds independent columns.
            bad = active[~ok]
            info.n_restarted += bad.numel()
            a[bad] = 0
            passive[bad] = False
            banned[bad] = False
            last[bad] = -1
            pa = pa & ok[:, None]
            z = z * ok[:, None]
        la = last[active]
        added = la >= 0
        z_added = torch.gather(z, 1, la.clamp_min(0)[:, None]).squeeze(1)
        reject = added & (z_added <= 0)
        if bool(reject.any()):
            r_rows, r_j = active[reject], la[reject]
            passive[r_rows, r_j] = False
            banned[r_rows, r_j] = True
        genuine = active[added & ~reject]
        banned[genuine] = False
        last[active] = -1
        feasible = ~(pa & (z <= 0)).any(-1) & ~reject
        # Infeasible rows: move from a toward z until the first passive variable reaches zero; drop it.
        inf_pos = (~feasible & ~reject).nonzero().squeeze(-1)
        if inf_pos.numel() > 0:
            rows = active[inf_pos]
            a_i, z_i, p_i = a[rows], z[inf_pos], pa[inf_pos]
            neg_i = p_i & (z_i <= 0)
            ratio = torch.where(neg_i, a_i / (a_i - z_i).clamp_min(torch.finfo(dtype).tiny),
                                torch.full_like(a_i, torch.inf))
            alpha = ratio.amin(-1, keepdim=True).clamp(0.0, 1.0)
            a_new = a_i + alpha * (z_i - a_i)
            p_new = p_i & (ratio > alpha) & (a_new > 0)
            a[rows] = a_new * p_new
            passive[rows] = p_new
        # Feasible rows: accept z, check the KKT conditions, add the most violating inactive variable.
        f_pos = feasible.nonzero().squeeze(-1)
        if f_pos.numel() > 0:
            rows = active[f_pos]
            a[rows] = z[f_pos]
            w = bF[rows] - _gram_times(op, a, rows, man, P, n)
            w = torch.where(validF[rows] & ~pa[f_pos] & ~banned[rows], w, neg_inf)
            wmax, jmax = w.max(-1)
            grow = wmax > tol[rows]
            g_rows = rows[grow]
            passive[g_rows, jmax[grow]] = True
            last[g_rows] = jmax[grow]
            keep = torch.ones(active.numel(), dtype=torch.bool, device=device)
            keep[f_pos[~grow]] = False
            active = active[keep]
    info.n_active_set_iterations += n_iter
    if active.numel() > 0:
        # Not converged within max_iter: exact per-sample solve (reported, never silent).
        info.n_fallback = int(active.numel())
        warnings.warn(
            f"batched NNLS: {info.n_fallback} of {info.n_samples} samples did not converge in {max_iter} "
            "active-set iterations; solved them with scipy.optimize.nnls",
            RuntimeWarning, stacklevel=3,
        )
        for row in active.tolist():
            Gi = op.dense()[int(man[row])].detach().cpu().numpy()
            vi = validF[row].cpu().numpy()
            a_np = np.zeros(m)
            a_np[vi] = _nnls_gram(Gi[np.ix_(vi, vi)], bF[row].cpu().numpy()[vi])
            a[row] = torch.as_tensor(a_np, dtype=dtype, device=device)
    return a.reshape(P, n, m), info
