"""Float tolerances derived from the dtype and the size of a reduction (issue #15).

Why
---
The same float32 result computed in another order -- batches of 2, 2, 1 instead of one batch of 5, another number
of threads or processes, another CPU's SIMD width or BLAS / oneDNN blocking, a GPU -- rounds differently. A fixed
``rtol=1e-6`` is not a bound on that difference: it held on one machine and failed on another by 1.006e-6.

The bound
---------
Let ``u = eps / 2`` be the unit roundoff of the dtype (float32: ``2**-24``) and ``gamma_k = k u / (1 - k u)``.
Summed in ANY order (left to right, pairwise, blocked, split over threads or processes, vectorised), a sum of
``n`` terms and an inner product of length ``n`` (products rounded, or fused) satisfy (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., eq. 4.4 and eq. 3.5)::

    |fl(t_1 + ... + t_n) - sum t_i|  <=  gamma_(n-1) * sum |t_i|
    |fl(x . y) - x . y|              <=  gamma_n     * |x| . |y|

so two evaluations in different orders differ by at most twice that. The scale is the sum of the ABSOLUTE terms,
not the result: with cancellation the result can be arbitrarily smaller than its terms, and a tolerance relative
to the result (``rtol``) has no bound at all.

Layers in a chain: for ``z_l = W_l h_(l-1) + b_l`` (inner products of length ``n_l`` plus the bias: ``n_l + 1``
terms) and ``h_l = f(z_l)`` with ``f`` 1-Lipschitz and ``|f(z)| <= |z|`` (ReLU, identity, flatten), the computed
``h_l`` is within ``G_l * a_l`` of the exact one, where ``a_l = |W_l| a_(l-1) + |b_l|`` (``a_0 = |x|``) is the same
network run on absolute values (:func:`abs_forward`) and ``1 + G_l = (1 + G_(l-1)) (1 + gamma_(n_l + 1))``.
(Induction: the rounding of layer ``l`` adds ``gamma_(n_l+1) (|W_l| |h^_(l-1)| + |b_l|)`` with
``|h^_(l-1)| <= (1 + G_(l-1)) a_(l-1)``, and the error carried in adds ``|W_l| G_(l-1) a_(l-1) <= G_(l-1) a_l``.)
:func:`gamma` takes the list of reduction lengths of such a chain.

This is the worst case, about ``n u`` relative to the scale; rounding errors of blocked sums typically grow like
``sqrt(n) u``. The worst case is used because a test must never fail on a machine that rounds legitimately, and
it is still orders of magnitude below the differences a real bug makes (a wrong stimulus order, layer or
batch split changes results by the order of the scale itself).

Assumed: IEEE arithmetic in the dtype (no TF32 / bfloat16 "fast" modes, no Winograd or FFT convolutions -- none
of which PyTorch uses for float32 on a CPU).

Where a computation is provably the same operations in the same order (a bit-identical resume on the same
machine and thread count, a copy, a save / load), the tests compare exactly instead; see their comments.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def unit_roundoff(dtype) -> float:
    """``eps / 2`` of a numpy or torch float dtype (float32: ``2**-24``)."""
    try:
        import torch

        if isinstance(dtype, torch.dtype):
            return torch.finfo(dtype).eps / 2
    except ImportError:  # pragma: no cover - torch is a test dependency
        pass
    return float(np.finfo(dtype).eps) / 2


def gamma(dtype, n_terms: int | Iterable[int]) -> float:
    """Relative error bound ``G`` (w.r.t. the sum of absolute terms) of one evaluation in any order.

    ``n_terms`` is the number of rounded operations a result accumulates: the length of a sum or inner product
    (plus one for an added bias), or a list of such lengths for a chain of layers, combined as
    ``1 + G = prod(1 + gamma_n)`` (see the module docstring).
    """
    u = unit_roundoff(dtype)
    sizes = [n_terms] if isinstance(n_terms, (int, np.integer)) else list(n_terms)
    total = 1.0
    for n in sizes:
        if n < 1:
            raise ValueError(f"reduction lengths must be >= 1, got {n}")
        if n * u >= 1:
            raise ValueError(f"a reduction of {n} terms has no useful bound at unit roundoff {u}")
        total *= 1.0 + n * u / (1 - n * u)
    return total - 1.0


def float_tol(dtype, n_terms: int | Iterable[int], scale):
    """Absolute tolerance between two evaluations, in different orders, of the same float computation.

    ``2 * gamma(dtype, n_terms) * scale``: each evaluation is within ``gamma * scale`` of the exact value.

    Parameters
    ----------
    dtype
        The dtype the computation runs in (numpy or torch).
    n_terms
        Length of the sum / inner product (``+ 1`` for a bias), or the list of lengths of a chain of layers.
    scale
        Sum of the absolute values of the terms (for a chain: :func:`abs_forward`); a scalar or an array of the
        result's shape (then the tolerance is element-wise).
    """
    return 2.0 * gamma(dtype, n_terms) * np.asarray(scale, dtype=np.float64)


def assert_close_within(actual, desired, atol, err_msg: str = "") -> None:
    """``|actual - desired| <= atol`` element-wise (``atol`` broadcasts), reporting the worst element."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    atol = np.broadcast_to(np.asarray(atol, dtype=np.float64), desired.shape)
    assert actual.shape == desired.shape, (actual.shape, desired.shape)
    diff = np.abs(actual - desired)
    bad = ~(diff <= atol)
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, diff - atol, -np.inf)), diff.shape)
        raise AssertionError(f"{int(bad.sum())} of {diff.size} elements differ by more than the derived tolerance; "
                             f"worst at {tuple(int(k) for k in i)}: |{actual[i]!r} - {desired[i]!r}| = {diff[i]:.3g} "
                             f"> {atol[i]:.3g}. {err_msg}")


def abs_forward(model, x):
    """Scales ``a_l`` of the module docstring: ``model`` run in float64 on ``|x|`` with ``|weight|``, ``|bias|``.

    Returns ``{name: a}`` for every named submodule of ``model`` (a ``torch.nn.Sequential`` of ``Conv*``,
    ``Linear``, ``ReLU`` and ``Flatten`` only, for which the derivation holds), as float64 tensors.
    """
    import copy

    import torch

    allowed = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear, torch.nn.ReLU, torch.nn.Flatten)
    if not isinstance(model, torch.nn.Sequential) or not all(isinstance(m, allowed) for m in model):
        raise TypeError("abs_forward needs a torch.nn.Sequential of Conv, Linear, ReLU and Flatten modules")
    net = copy.deepcopy(model).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
        out, h = {}, torch.as_tensor(x).double().abs()
        for name, module in net.named_children():
            h = module(h)
            out[name] = h
    return out
