"""Mean-field theoretic manifold analysis (MFTMA): capacity, anchor radius and anchor dimension.

Chung, Lee & Sompolinsky, Phys. Rev. X 8, 031003 (2018); Cohen, Chung, Lee & Sompolinsky, Nat. Commun. 11, 746
(2020). The numbers follow the reference implementation (``neural_manifolds_replicaMFT``,
``manifold_analysis_corr``) except where documented: the per-sample quadratic program is solved as an exactly
equivalent non-negative least squares problem, many samples and manifolds at once (see ``_nnls``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import xarray as xr

from data._checks import check_array, check_float, check_int

from ._anchor_stats import (
    _chunks,
    _dataset,
    _principal_coordinates,
    _samples,
    _summaries,
)
from ._center import center_structure, mean_abs_correlation
from ._centering import _deviations, _manifold_means
from ._inputs import (
    _check_dtype,
    _check_memory,
    _check_required,
    _resolve_device,
    validate_manifolds,
    validate_settings,
)
from ._nnls import GramOperator, nnls_batched
from ._nnls_reference import nnls_reference, qp_reference
from ._threads import single_thread

#: Center-correlation searches of :func:`capacity`.
CENTER_SEARCHES = ("reference", "fast")

__all__ = ["capacity", "manifold_geometry"]

# The reference treats a sample as interior (V = T) when ||V - T|| < 1e-8, i.e. F < 1e-16.
_INTERIOR_F = 1e-16
#: Most random starts per K of the center-correlation search that :func:`capacity` accepts.
MAX_REPS = 1000
#: Largest absolute coordinate :func:`manifold_geometry` accepts: squared norms of larger values overflow float64.
MAX_POINT_VALUE = 1e150


def _analyse_chunk(points: list[torch.Tensor], indices: list[int], kappa: float, n_t: int, seed: int,
                   definition: str, solver: str, warm_iter: int) -> dict[str, torch.Tensor]:
    """Anchor-point analysis of a group of manifolds (deviations from their centers, center at unit norm)."""
    device, dtype = points[0].device, points[0].dtype
    Pc = len(points)
    sizes = [p.shape[0] for p in points]
    m = max(sizes)
    dims = torch.tensor([min(p.shape[0], p.shape[1]) for p in points], device=device)
    D = int(dims.max())
    valid = torch.arange(m, device=device)[None, :] < torch.tensor(sizes, device=device)[:, None]
    C = _principal_coordinates(points, m, D)  # (Pc, m, D): points x coordinates
    z = torch.zeros((Pc, n_t, D), dtype=dtype, device=device)
    tc = torch.zeros((Pc, n_t), dtype=dtype, device=device)
    for j, i in enumerate(indices):
        t = torch.as_tensor(_samples(seed, i, n_t, int(dims[j])), dtype=dtype, device=device)
        z[j, :, : int(dims[j])] = t[:, :-1]
        tc[j] = t[:, -1]
    b_dev = torch.bmm(z, C.transpose(1, 2))  # (Pc, n, m): t_D . x_mu
    t_center = tc + kappa  # kappa moves the constraint into the center coordinate (see _nnls)
    if solver == "fast":
        # S = [C^T; 1]: (D + 1, m) per manifold; padded points are masked out by `valid`.
        S = torch.cat([C.transpose(1, 2), torch.ones((Pc, 1, m), dtype=dtype, device=device)], dim=1)
        op = GramOperator(S=S) if D + 1 < m else GramOperator(G=torch.bmm(S.transpose(1, 2), S))
        b = b_dev + t_center[..., None]
        t_norm2 = (z * z).sum(-1) + t_center ** 2
        a, _info = nnls_batched(op, b, valid, t_norm2, warm_iter=warm_iter)
        F = (a * op.times(a)).sum(-1)
        weight = a.sum(-1)
        s = torch.bmm(a, C) / torch.where(weight > 0, weight, torch.ones_like(weight))[..., None]
    else:
        F = torch.zeros((Pc, n_t), dtype=dtype, device=device)
        s = torch.zeros((Pc, n_t, D), dtype=dtype, device=device)
        for j in range(Pc):
            mj, dj = sizes[j], int(dims[j])
            Cj = C[j, :mj, :dj].cpu().numpy()
            S = np.vstack([Cj.T, np.ones((1, mj))])  # (D+1, m): points with the unit center coordinate
            T = np.concatenate([z[j, :, :dj].cpu().numpy(), tc[j, :, None].cpu().numpy()], axis=1)
            if solver == "reference":
                T_shift = T.copy()
                T_shift[:, -1] += kappa
                Sa = nnls_reference(S, T_shift) @ S.T
            else:
                Sa = qp_reference(S, T, kappa)
            F[j] = torch.as_tensor((Sa ** 2).sum(-1), dtype=dtype, device=device)
            weight = Sa[:, -1]
            anchor = Sa[:, :-1] / np.where(weight > 0, weight, 1.0)[:, None]
            s[j, :, :dj] = torch.as_tensor(anchor, dtype=dtype, device=device)
    # Interior samples (t already satisfies the constraints): the anchor is the point of largest projection.
    interior = F <= _INTERIOR_F
    if bool(interior.any()):
        jmax = torch.where(valid[:, None, :], b_dev, torch.tensor(-torch.inf, dtype=dtype, device=device)).argmax(-1)
        s_max = torch.gather(C, 1, jmax[..., None].expand(-1, -1, D))
        s = torch.where(interior[..., None], s_max, s)
        F = torch.where(interior, torch.zeros_like(F), F)
    alpha, radius, dimension = _summaries(F, s, z, dims, definition)
    return {"alpha": alpha, "radius": radius, "dimension": dimension, "dims": dims}


def _anchor_analysis(points: list[torch.Tensor], kappa: float, n_t: int, seed: int, definition: str,
                     solver: str, warm_iter: int = 30, workers: int | None = None) -> dict[str, np.ndarray]:
    """Run the per-manifold analysis in chunks of similar size; returns numpy arrays in input order.

    On CPU with the fast solver, ``workers`` chunks (default: ``torch.get_num_threads()``) run concurrently in
    Python threads, each on one torch thread (torch releases the GIL inside its kernels). The batched solver
    issues many small kernels; splitting them across OpenMP threads costs a barrier each, which on a loaded
    machine (a descheduled thread stalls every barrier) was 5-30x slower than one thread, whereas independent
    chunks only ever wait for themselves. Each manifold's numbers do not depend on the chunking beyond rounding.
    """
    on_cpu = points[0].device.type == "cpu"
    if workers is None:
        workers = torch.get_num_threads() if on_cpu and solver == "fast" else 1
    workers = max(1, min(int(workers), len(points)))
    chunks = _chunks(points, n_t, workers)

    def run(chunk: list[int]) -> dict[str, np.ndarray]:
        res = _analyse_chunk([points[i] for i in chunk], chunk, kappa, n_t, seed, definition, solver, warm_iter)
        return {key: val.detach().cpu().numpy() for key, val in res.items()}

    if workers > 1:
        with single_thread(True), ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(run, chunks))
    else:
        results = [run(chunk) for chunk in chunks]
    inv = np.argsort(np.asarray([i for chunk in chunks for i in chunk]))
    return {key: np.concatenate([r[key] for r in results])[inv] for key in ("alpha", "radius", "dimension", "dims")}


def manifold_geometry(
    points: Sequence[Any],
    kappa: float = 0.0,
    n_t: int = 200,
    seed: int = 0,
    *,
    definition: str = "reference",
    solver: str = "fast",
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64,
) -> xr.Dataset:
    """Mean-field capacity, radius and dimension of manifolds given relative to unit-norm centers.

    This is the per-manifold core of :func:`capacity` without the global centering and center-correlation
    steps: manifold ``i`` is the set of points ``(x_mu, 1)`` where the rows ``x_mu`` of ``points[i]`` are the
    points' displacements from the manifold's center and the last coordinate is the center, at unit distance along
    a direction orthogonal to every displacement (the reference implementation's ``(D+1)``-dimensional form).
    It realises the analytic oracles directly: identical zero rows are a point, rows on a sphere of radius
    ``R`` a ball, ``+- R e_i`` with large ``R`` an affine subspace.

    For each manifold, ``n_t`` Gaussian vectors ``T`` are drawn in the manifold's ``D + 1`` coordinates
    (``D = min(features, points)``, as in the reference) and
    ``F(T) = min ||V - T||^2`` s.t. ``V . S <= -kappa`` for every point ``S`` is solved exactly;
    the capacity is ``1 / mean F``; the anchor point of ``T`` is the convex combination of points given by the
    dual weights (the point of largest projection where ``F = 0``).

    Parameters
    ----------
    points
        ``P`` arrays of shape ``(m_i, D_i)``.
    kappa
        Margin (``>= 0``).
    n_t
        Gaussian samples per manifold.
    seed
        Seed; manifold ``i`` draws its samples from ``SeedSequence([seed, i])``.
    definition
        ``"reference"`` (default): ``R_M`` is the root mean squared distance of the anchor points from their mean
        over samples and ``D_M = D * mean(cos(t, s))^2`` (the reference code squares the mean cosine);
        ``"theory"``: ``R_M = sqrt(<|s|^2>)`` and ``D_M = <(t . s_hat)^2>`` (PRX 2018 eqs. 28-29).
    solver
        ``"fast"`` (batched exact NNLS in torch), ``"reference"`` (``scipy.optimize.nnls`` one sample at a time)
        or ``"qp"`` (scipy SLSQP on the original constrained problem, one sample at a time; slow).
    device
        Torch device of the fast solver (``"cpu"``, ``"cuda"``); default CPU.
    dtype
        Torch dtype (default float64).

    Returns
    -------
    xarray.Dataset
        ``manifold_capacity``, ``manifold_radius``, ``manifold_dimension``, ``n_points`` along ``manifold``;
        scalars ``capacity`` (harmonic mean), ``radius`` and ``dimension`` (means); settings as attributes.

    Raises
    ------
    TypeError
        For points that are not real numbers, settings of the wrong type, a ``dtype`` other than float32/64.
    ValueError
        Before any solve: empty or non-2-D points, NaN/inf, coordinates beyond ``1e150`` in absolute value (the
        points are in units of the center norm, so they cannot be rescaled; their squares would overflow), bad
        settings (see :func:`validate_settings`), an ``n_t`` whose arrays would not fit in memory (more than
        8 GiB; the environment variable ``LCL_WORKBENCH_MAX_GB`` sets the limit).

    Examples
    --------
    >>> import numpy as np
    >>> import geometry
    >>> point = np.zeros((2, 1))           # a manifold that is a single point
    >>> ring = np.array([[np.cos(a), np.sin(a)] for a in np.linspace(0, 2 * np.pi, 64, endpoint=False)])
    >>> ds = geometry.manifold_geometry([point, ring], n_t=2000)
    >>> [round(float(c), 1) for c in ds.manifold_capacity]  # Gardner 2; a unit disk 2/(D+1) = 2/3
    [2.0, 0.7]
    """
    if isinstance(points, np.ndarray) or not isinstance(points, Sequence):
        raise TypeError(f"points must be a list of (m_i, D_i) arrays, got {type(points).__name__}")
    validate_settings(kappa=kappa, n_t=n_t, seed=seed, definition=definition, solver=solver)
    _check_required(definition=definition, solver=solver)
    dtype = _check_dtype(dtype)
    arrays = []
    for i, p in enumerate(points):
        arr = check_array(f"points[{i}]", p, ndim=2)
        if arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ValueError(f"points[{i}] must be a non-empty 2-D (points, coordinates) array, got shape {arr.shape}")
        peak = float(np.abs(arr).max())
        if peak > MAX_POINT_VALUE:
            raise ValueError(f"points[{i}] has coordinates up to {peak:.3g}; manifold_geometry takes displacements in "
                             f"units of the center norm, and beyond {MAX_POINT_VALUE:g} their squares overflow "
                             "(geometry.capacity normalises raw data itself)")
        arrays.append(arr)
    if len(arrays) < 1:
        raise ValueError("need at least 1 manifold")
    _check_memory(int(n_t), [a.shape[0] for a in arrays], [min(a.shape) for a in arrays], dtype)
    dev = _resolve_device(device)
    tensors = [torch.as_tensor(a, dtype=dtype, device=dev) for a in arrays]
    res = _anchor_analysis(tensors, float(kappa), int(n_t), int(seed), definition, solver)
    attrs = {"kappa": float(kappa), "n_t": int(n_t), "seed": int(seed), "definition": definition,
             "solver": solver}
    return _dataset(res, np.arange(len(arrays)), [a.shape[0] for a in arrays], attrs)


def capacity(
    x: Any,
    by: str | None = None,
    kappa: float = 0.0,
    n_t: int = 200,
    center_correlation: str = "remove",
    seed: int = 0,
    *,
    definition: str = "reference",
    max_k: int | None = None,
    n_reps: int = 10,
    center_rtol: float = 0.0,
    center_search: str = "reference",
    center_polish: bool = False,
    solver: str = "fast",
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64,
) -> xr.Dataset:
    """Mean-field manifold capacity, radius and dimension (MFTMA) of the manifolds in ``x``.

    The algorithm of the reference implementation (``manifold_analysis_corr``): subtract the global mean of all
    points; with ``center_correlation="remove"``, find the ``K`` center directions that best explain the
    correlations between manifold centers and project every point onto their orthogonal complement; re-center
    each manifold on its own center and divide by the center's norm; then, per manifold, the anchor-point
    analysis of :func:`manifold_geometry`. Manifolds with more points than features (``m_i > N``) and fewer
    (``m_i < N``) are both handled: each manifold is reduced exactly to its own span first.

    Parameters
    ----------
    x
        An assembly (manifolds: the groups of its ``by`` coordinate) or a list of ``P`` arrays ``(m_i, N)``.
    by
        Presentation coordinate defining the manifolds (default ``"category"``; assemblies only).
    kappa
        Margin (``>= 0``).
    n_t
        Gaussian samples per manifold; the capacity's relative sampling error is about ``std(F)/mean(F)/sqrt(n_t)``.
    center_correlation
        ``"remove"`` (default, as the reference; needs centers spanning at least 2 dimensions, so at least 3
        manifolds) or ``"keep"`` (``K = 0``).
    seed
        Seed of the Gaussian samples and of the center-correlation random starts.
    definition
        ``"reference"`` or ``"theory"`` radius/dimension (see :func:`manifold_geometry`).
    max_k
        Largest number of center directions tried (default: the reference rule, see ``center_structure``).
    n_reps
        Starts per ``K`` in the center-correlation search (default 10, as the reference).
    center_rtol
        Stopping rule of that search: it ends after three ``K`` in a row that lower the mean absolute residual
        center correlation by no more than this fraction, and keeps the best ``K`` before them. ``0`` (default)
        is the reference rule: three rises in a row, then the overall minimum. ``0.01`` also stops on the slow
        ~0.1 %-per-direction decline that noise gives with many manifolds, where the reference rule removes
        dozens to hundreds of directions; it is not the reference's result (measured effect: README, "MFTMA").
    center_search
        ``"reference"`` (default): what the reference code runs, random starts on the Stiefel manifold and
        pymanopt 0.2's conjugate gradient with its default stopping rules. ``"fast"``: starts warm from the
        ``K - 1`` solution and our Polak-Ribiere conjugate gradient with a plateau stop (fewer iterations).
    center_polish
        Refine the selected directions to a tight tolerance before removing them. Off by default: the reference
        does not, and on natural-image features it can move the directions far from the selected start.
    solver
        ``"fast"``, ``"reference"`` or ``"qp"`` (see :func:`manifold_geometry`).
    device
        Torch device (``"cpu"`` default, ``"cuda"``).
    dtype
        Torch dtype (default float64).

    Returns
    -------
    xarray.Dataset
        Per manifold (dim ``manifold``, labelled by the ``by`` values): ``manifold_capacity``,
        ``manifold_radius``, ``manifold_dimension``, ``n_points``; scalars ``capacity`` (harmonic mean over
        manifolds), ``radius`` and ``dimension`` (means), ``center_correlation`` (mean absolute cosine between
        the centered manifold centers, before removal), ``K`` (center directions removed); the settings as
        attributes.

    Raises
    ------
    TypeError
        Before any solve, for settings of the wrong type (a string for a number, a bool or float for an
        integer, a ``dtype`` other than float32/64); these errors are also ``ValueError`` instances.
    ValueError
        Before any solve, for fewer than 2 manifolds, a manifold with fewer than 2 points, NaN/inf, a missing
        ``by`` coordinate, ``kappa < 0``, ``n_t < 1``, ``n_reps`` outside ``[1, 1000]``, an ``n_t`` whose
        arrays would not fit in memory (more than 8 GiB; the environment variable ``LCL_WORKBENCH_MAX_GB`` sets
        the limit), or a manifold whose center coincides with the global mean.

    Notes
    -----
    Capacity, radius, dimension and center correlation do not depend on the scale of the data; the data are
    divided by a power of two near their largest absolute value first, so values near 1e200 or 1e-300 give the
    results of values near 1 (and data already near 1 are not changed at all).

    Examples
    --------
    >>> import numpy as np
    >>> import data, geometry
    >>> rng = np.random.default_rng(0)
    >>> values = rng.normal(size=(60, 100)) + np.repeat(rng.normal(size=(3, 100)) * 3, 20, axis=0)
    >>> a = data.assembly(values, stimulus_id=np.arange(60), neuroid_id=np.arange(100),
    ...                   category=np.repeat(["a", "b", "c"], 20))
    >>> ds = geometry.capacity(a, by="category", n_t=100)
    >>> ds.manifold_capacity.sizes["manifold"], bool(ds.capacity > 0)
    (3, True)
    """
    manifolds, labels = validate_manifolds(x, by)
    validate_settings(kappa=kappa, n_t=n_t, seed=seed, center_correlation=center_correlation,
                      definition=definition, solver=solver)
    _check_required(center_correlation=center_correlation, definition=definition, solver=solver)
    n_reps = check_int("n_reps", n_reps, low=1, high=MAX_REPS)
    max_k = check_int("max_k", max_k, low=1, none=True)
    center_rtol = check_float("center_rtol", center_rtol, low=0.0, high=1.0, high_open=True)
    if center_search not in CENTER_SEARCHES:
        raise ValueError(f"center_search must be one of {CENTER_SEARCHES}, got {center_search!r}")
    if not isinstance(center_polish, (bool, np.bool_)):
        raise TypeError(f"center_polish must be a bool, got {type(center_polish).__name__}")
    dtype = _check_dtype(dtype)
    _check_memory(int(n_t), [m.shape[0] for m in manifolds], [min(m.shape) for m in manifolds], dtype)
    P = len(manifolds)
    if center_correlation == "remove" and P < 3:
        raise ValueError(
            f"center_correlation='remove' needs at least 3 manifolds (got {P}): with 2 the only center direction "
            "is their difference, and removing it leaves both centers at the origin; use center_correlation='keep'"
        )
    dev = _resolve_device(device)
    # Per-manifold centering and projection: a few hundred kernels on (m_i, N) arrays, run on one torch thread
    # and one BLAS thread (with 2 OpenMP threads on a loaded 2-core machine these took 15 s instead of 0.2 s at
    # P=100, N=5000). The centers are those of the data scaled to a largest absolute value in [0.5, 1).
    on_cpu = dev.type == "cpu"
    with single_thread(on_cpu):
        X, centers = _manifold_means(manifolds, dtype, dev)
        correlation = mean_abs_correlation(centers - centers.mean(0, keepdim=True))
    K, k_max, directions = 0, 0, None
    if center_correlation == "remove":
        search = dict(start="random", optimizer="reference") if center_search == "reference" else \
            dict(start="warm", optimizer="fast")
        cs = center_structure(centers, max_k=max_k, n_reps=n_reps, seed=seed, rtol=float(center_rtol),
                              polish=bool(center_polish), **search)
        K, k_max, directions = cs.K, cs.max_k, cs.directions
    workers = torch.get_num_threads() if on_cpu else 1  # Python threads, each on one torch thread
    with single_thread(on_cpu):
        deviations = _deviations(X, directions, labels, workers=workers)
    res = _anchor_analysis(deviations, float(kappa), int(n_t), int(seed), definition, solver)
    attrs = {"kappa": float(kappa), "n_t": int(n_t), "seed": int(seed), "center_correlation_mode":
             center_correlation, "definition": definition, "solver": solver, "n_reps": int(n_reps),
             "center_rtol": float(center_rtol), "center_search": center_search,
             "center_polish": int(bool(center_polish)), "max_k": int(k_max),
             "by": "" if by is None and not isinstance(x, xr.DataArray) else (by or "category")}
    ds = _dataset(res, labels, [m.shape[0] for m in manifolds], attrs)
    ds["center_correlation"] = ((), float(correlation))
    ds["K"] = ((), int(K))
    return ds
