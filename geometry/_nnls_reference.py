"""Per-sample solvers of the MFTMA anchor-point problem (see ``_nnls``), one sample at a time with scipy: the
exact NNLS (``solver="reference"``), the original constrained quadratic program (``solver="qp"``), and the
fallback of the batched solver for samples it did not converge on.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

__all__: list[str] = []  # private module: nnls_reference, qp_reference


def _nnls_gram(G: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``argmin_{a>=0} 0.5 a'Ga - b'a`` via scipy's NNLS on a square-root factor of ``G``."""
    w, U = np.linalg.eigh(G)
    w = np.clip(w, 0, None)
    keep = w > w.max() * 1e-14 if w.max() > 0 else np.zeros_like(w, dtype=bool)
    S = (U[:, keep] * np.sqrt(w[keep])).T  # S'S = G
    t = (U[:, keep].T @ b) / np.sqrt(w[keep])  # S't = b on the range of G
    a, _ = scipy.optimize.nnls(S, t, maxiter=50 * G.shape[0])
    return a


def nnls_reference(S: np.ndarray, t: np.ndarray) -> np.ndarray:
    """One sample at a time: ``scipy.optimize.nnls(S, t_k)`` for every row ``t_k`` of ``t``.

    Parameters
    ----------
    S
        ``(d, m)`` points as columns.
    t
        ``(n, d)`` samples (already shifted by kappa on the center coordinate).

    Returns
    -------
    numpy.ndarray
        ``(n, m)`` weights.
    """
    out = np.empty((t.shape[0], S.shape[1]))
    for i, ti in enumerate(t):
        out[i], _ = scipy.optimize.nnls(S, ti, maxiter=50 * S.shape[1])
    return out


def qp_reference(S: np.ndarray, t: np.ndarray, kappa: float) -> np.ndarray:
    """One quadratic program per sample, in the original primal form, with scipy's SLSQP.

    ``V* = argmin ||V - t||^2`` s.t. ``S^T V <= -kappa``; returns ``t - V*`` (= ``S a*``), shape ``(n, d)``.
    This is the formulation the reference implementation hands to cvxopt; it does not use the NNLS reduction,
    so it checks that reduction.
    """
    out = np.empty_like(t)
    St = np.ascontiguousarray(S.T)
    for i, ti in enumerate(t):
        cons = {"type": "ineq", "fun": lambda v: -kappa - St @ v, "jac": lambda v: -St}
        res = scipy.optimize.minimize(
            lambda v, ti=ti: 0.5 * float(np.sum((v - ti) ** 2)), ti.copy(), jac=lambda v, ti=ti: v - ti,
            constraints=[cons], method="SLSQP", options={"ftol": 1e-15, "maxiter": 10_000},
        )
        if not res.success:
            # Status 8 ("positive directional derivative for linesearch") is SLSQP stopping where it cannot
            # improve; accept it only with a KKT certificate: feasible, and t - v in the cone of the active points.
            v = res.x
            slack = St @ v + kappa
            act = slack >= -1e-7
            resid = scipy.optimize.nnls(S[:, act], ti - v)[1] if act.any() else float(np.linalg.norm(ti - v))
            if res.status != 8 or max(float(slack.max()), float(resid)) > 1e-8:
                raise RuntimeError(f"SLSQP failed on sample {i}: {res.message}")
        out[i] = ti - res.x
    return out
