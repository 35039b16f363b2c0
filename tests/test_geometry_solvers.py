"""geometry: the solvers behind the measures: the batched anchor-point NNLS against per-sample reference paths,
and the center-correlation search (cost, gradient, threads, lockstep starts, the reference K rule)."""

from __future__ import annotations


import numpy as np
import pytest
import torch

import geometry
from geometry import _mftma
from geometry._nnls import GramOperator, nnls_batched
from geometry._nnls_reference import nnls_reference

N_SIGMA = 4.0  # tolerance in standard errors of the Monte-Carlo estimate (two-sided p ~ 6e-5 per check)



# --- 3. fast batched solver vs. the slow per-sample paths -----------------------------------------------------


@pytest.mark.parametrize("kappa", [0.0, 0.7])
@pytest.mark.parametrize("definition", ["reference", "theory"])
def test_fast_solver_matches_scipy_per_sample(kappa, definition):
    rng = np.random.default_rng(11)
    # m < N (dense Gram, warm start) and m > N (factored Gram) regimes, radii from small to large.
    pts = [rng.standard_normal((m, N)) * r for m, N, r in
           [(15, 40, 0.3), (15, 40, 1.0), (25, 40, 3.0), (40, 6, 1.0), (30, 3, 0.5), (9, 9, 2.0)]]
    kw = dict(kappa=kappa, n_t=120, seed=3, definition=definition)
    fast = geometry.manifold_geometry(pts, solver="fast", **kw)
    slow = geometry.manifold_geometry(pts, solver="reference", **kw)
    for v in ("manifold_capacity", "manifold_radius", "manifold_dimension"):
        np.testing.assert_allclose(fast[v].values, slow[v].values, rtol=1e-5, err_msg=v)


def test_qp_path_matches_fast_path_at_positive_margin():
    # The QP path solves the original constrained problem (no NNLS reduction): it checks the reduction itself.
    rng = np.random.default_rng(2)
    pts = [rng.standard_normal((6, 4)) * 0.8, rng.standard_normal((5, 8)) * 1.5]
    kw = dict(kappa=0.5, n_t=25, seed=1)
    fast = geometry.manifold_geometry(pts, solver="fast", **kw)
    qp = geometry.manifold_geometry(pts, solver="qp", **kw)
    for v in ("manifold_capacity", "manifold_radius", "manifold_dimension"):
        np.testing.assert_allclose(fast[v].values, qp[v].values, rtol=1e-5, err_msg=v)


@pytest.mark.parametrize("warm_start", ["greedy", "fista"])
@pytest.mark.parametrize("pdas_iter", [0, 10])
@pytest.mark.parametrize("kappa", [0.0, 0.4])
@pytest.mark.parametrize("factored", [False, True])
def test_batched_nnls_kkt_and_agreement(kappa, factored, pdas_iter, warm_start):
    # pdas_iter=0: Lawson-Hanson alone from the warm start; 10: primal-dual active-set rounds first. Warm starts:
    # best single point (certified where the anchor is one point) or FISTA (the default "auto" picks one).
    rng = np.random.default_rng(7)
    P, d, m, n = 4, (5 if factored else 31), 30, 50
    S = rng.standard_normal((P, d, m)) * rng.uniform(0.2, 2.0, size=(P, 1, 1))
    S[:, -1, :] = 1.0  # the center coordinate
    T = rng.standard_normal((P, n, d))
    T[..., -1] += kappa
    St, Tt = torch.tensor(S), torch.tensor(T)
    op = GramOperator(S=St) if factored else GramOperator(G=St.transpose(1, 2) @ St)
    a, info = nnls_batched(op, Tt @ St, torch.ones(P, m, dtype=torch.bool), (Tt ** 2).sum(-1), pdas_iter=pdas_iter,
                           warm_start=warm_start)
    assert info.n_fallback == 0
    a = a.numpy()
    for p in range(P):
        a_ref = nnls_reference(S[p], T[p])
        F = ((a[p] @ S[p].T) ** 2).sum(-1)
        F_ref = ((a_ref @ S[p].T) ** 2).sum(-1)
        np.testing.assert_allclose(F, F_ref, rtol=1e-9, atol=1e-12)
        # KKT certificate: a >= 0, gradient S^T(t - S a) <= tol off the support, = 0 on it.
        w = (T[p] - a[p] @ S[p].T) @ S[p]
        assert (a[p] >= 0).all()
        assert (w <= 1e-8).all()
        assert np.abs(w[a[p] > 0]).max(initial=0) < 1e-8


@pytest.mark.parametrize("warm_start", ["auto", "greedy", "fista"])
def test_single_point_anchors_are_certified_exactly(warm_start):
    # Small manifolds far from the origin: most anchors are one point. The greedy start certifies those by one
    # KKT check; every start must give the scipy solution.
    rng = np.random.default_rng(3)
    P, d, m, n = 3, 12, 10, 200
    S = rng.standard_normal((P, d, m)) * np.array([0.05, 0.2, 0.6])[:, None, None]
    S[:, -1, :] = 1.0
    T = rng.standard_normal((P, n, d))
    St, Tt = torch.tensor(S), torch.tensor(T)
    op = GramOperator(G=St.transpose(1, 2) @ St)
    a, info = nnls_batched(op, Tt @ St, torch.ones(P, m, dtype=torch.bool), (Tt ** 2).sum(-1), warm_start=warm_start)
    if warm_start != "fista":
        assert info.n_single > n // 2
    for p in range(P):
        a_ref = nnls_reference(S[p], T[p])
        np.testing.assert_allclose(((a[p].numpy() @ S[p].T) ** 2).sum(-1), ((a_ref @ S[p].T) ** 2).sum(-1),
                                   rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(a[p].numpy(), a_ref, atol=1e-9)


def test_parallel_chunks_match_serial():
    # Manifolds solved in concurrent chunks (Python threads) give the numbers of one serial batch.
    rng = np.random.default_rng(4)
    pts = [torch.as_tensor(rng.standard_normal((m, 12)) * r) for m, r in
           [(10, 0.5), (10, 1.0), (10, 2.0), (14, 1.0), (14, 0.7), (20, 0.3), (20, 1.5)]]
    serial = _mftma._anchor_analysis(pts, 0.2, 80, 1, "reference", "fast", workers=1)
    assert len(_mftma._chunks(pts, 80, 2)) == 6  # each run of equal-size manifolds split in two
    parallel = _mftma._anchor_analysis(pts, 0.2, 80, 1, "reference", "fast", workers=2)
    for key in ("alpha", "radius", "dimension"):
        np.testing.assert_allclose(parallel[key], serial[key], rtol=1e-12, err_msg=key)


def test_degenerate_duplicate_points_are_solved():
    # Duplicate columns make the warm start's passive blocks singular; the solver must restart and still agree.
    base = np.random.default_rng(1).standard_normal((5, 7))
    pts = [np.vstack([base, base[:3]]), np.zeros((3, 7))]
    fast = geometry.manifold_geometry(pts, n_t=200, kappa=0.3)
    slow = geometry.manifold_geometry(pts, n_t=200, kappa=0.3, solver="reference")
    np.testing.assert_allclose(fast.manifold_capacity, slow.manifold_capacity, rtol=1e-8)


def test_center_cost_gradient_matches_autograd():
    from geometry._stiefel import _cost_and_grad

    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 11, generator=g, dtype=torch.float64)
    V = torch.linalg.qr(torch.randn(11, 3, generator=g, dtype=torch.float64))[0].requires_grad_()
    c = X @ V
    Gr = X @ X.T - c @ c.T
    c0 = Gr.diagonal()
    f = 0.5 * (Gr ** 2 / (c0[:, None] * c0[None, :])).sum()
    f.backward()
    f2, g2 = _cost_and_grad(V.detach(), X, X @ X.T)
    assert float(f2) == pytest.approx(float(f.detach()))
    torch.testing.assert_close(g2, V.grad)


def test_center_search_threads_give_the_serial_result():
    # The random starts of each K run in concurrent threads; same starts, compared in the same order. Exact: each
    # start's solve is the same float64 operations on tensors (15 x 14) far below ATen's and BLAS's thresholds
    # for splitting work across threads, so the thread that runs it cannot change their order.
    from geometry._center import center_structure

    rng = np.random.default_rng(6)
    own = rng.standard_normal((15, 40))
    centers = torch.as_tensor(own + 2 * rng.standard_normal((15, 1)) * rng.standard_normal(40))
    serial = center_structure(centers, n_reps=3, workers=1)
    threaded = center_structure(centers, n_reps=3, workers=2)
    assert serial.K == threaded.K
    np.testing.assert_array_equal(serial.correlation_after, threaded.correlation_after)
    torch.testing.assert_close(serial.directions, threaded.directions, rtol=0, atol=0)


def test_center_correlation_removal_finds_shared_structure():
    # Centers = private noise + a strong shared rank-2 component: the analysis should remove K = 2 directions.
    rng = np.random.default_rng(1)
    P, N = 20, 100
    centers = rng.standard_normal((P, N)) + 3 * rng.standard_normal((P, 2)) @ rng.standard_normal((2, N))
    ms = [c + 0.3 * rng.standard_normal((8, N)) for c in centers]
    ds = geometry.capacity(ms, n_t=30, center_rtol=0.01, center_search="fast")
    assert int(ds.K) == 2  # warm starts find the shared plane at K = 2; the plateau rule stops right after it
    assert float(ds.center_correlation) > 0.3
    # The reference search (default) keeps, per K, the most *stable* of 10 random starts (largest smallest
    # fraction of a center's norm left), not the lowest cost; here its K = 2 pick misses the plane (residual
    # correlation 0.44 against 0.10) and K = 3 removes it: never fewer directions than the planted rank.
    assert 2 <= int(geometry.capacity(ms, n_t=30).K) <= 5



def _reference_stop(costs: np.ndarray, k_max: int) -> tuple[int, bool]:
    """The reference fun_FA rule, written out: stop once three rises in a row follow K >= 2; K = overall argmin."""
    for i in range(5, len(costs) + 1):
        if costs[i - 1] > costs[i - 2] > costs[i - 3] > costs[i - 4]:
            return int(np.argmin(costs[:i])) + 1, i == len(costs)
    return int(np.argmin(costs)) + 1, len(costs) == k_max


def test_center_search_rtol_zero_is_the_reference_rule_and_default_stops_on_the_plateau():
    from geometry._center import center_structure

    # Shared rank-3 structure + private noise: removing directions 1-3 lowers the residual correlation a lot,
    # every further one by well under 1 % (noise), with small rises here and there.
    rng = np.random.default_rng(3)
    P, N = 60, 200
    centers = torch.as_tensor(rng.standard_normal((P, 3)) @ rng.standard_normal((3, N)) + rng.standard_normal((P, N)))
    ref = center_structure(centers, n_reps=2, rtol=0.0, max_iter=100)
    K, stopped_at_end = _reference_stop(ref.correlation_after, ref.max_k)
    assert ref.K == K and stopped_at_end  # searched exactly as far as the reference rule, chose its K
    new = center_structure(centers, n_reps=2, max_iter=100, rtol=0.01)
    assert new.K == 3 and ref.K > 3
    tried = len(new.correlation_after)
    assert tried == 6  # K = 4, 5, 6 improve by < 1 %: stop there
    np.testing.assert_allclose(new.correlation_after, ref.correlation_after[:tried])  # same path until then
    with pytest.raises(ValueError, match="center_rtol"):
        geometry.capacity([c + rng.standard_normal((4, N)) for c in centers.numpy()[:5]], n_t=5, center_rtol=1.5)


@pytest.mark.parametrize("m, N", [(6, 40), (40, 6)])
def test_capacity_equals_the_per_manifold_core_on_hand_made_deviations(m, N):
    # capacity() = global centering, own-center re-centering and center-norm scaling, then manifold_geometry; for
    # m < N it hands over (m, m) coordinates with the same Gram matrix instead of the (m, N) deviations.
    rng = np.random.default_rng(5)
    ms = [rng.standard_normal(N) * 2 + rng.standard_normal((m, N)) for _ in range(5)]
    origin = np.vstack(ms).mean(0)
    devs = []
    for x in ms:
        c = x.mean(0) - origin
        devs.append((x - origin - c) / np.linalg.norm(c))
    ref = geometry.manifold_geometry(devs, n_t=60, kappa=0.2, seed=3)
    before = [x.copy() for x in ms]
    ds = geometry.capacity(ms, n_t=60, kappa=0.2, seed=3, center_correlation="keep")
    for name in ("manifold_capacity", "manifold_radius", "manifold_dimension"):
        np.testing.assert_allclose(ds[name].values, ref[name].values, rtol=1e-8)
    for x, y in zip(ms, before):  # the caller's arrays are not modified in place
        np.testing.assert_array_equal(x, y)



def _center_coordinates(rng: np.random.Generator, P: int, N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centers with a shared rank-3 structure, in the coordinates of their span (as the center search sees them):
    ``X`` ``(P, P - 1)`` and ``C = X X^T``."""
    centers = rng.standard_normal((P, 3)) @ rng.standard_normal((3, N)) + rng.standard_normal((P, N))
    U, S, _ = torch.linalg.svd(torch.as_tensor(centers - centers.mean(0)), full_matrices=False)
    X = (U * S)[:, : P - 1]
    return X, X @ X.T


def test_center_search_numpy_optimizer_equals_the_torch_one_to_rounding():
    # On CPU the reference optimizer runs in numpy (less per-call overhead); it is the torch iteration operation
    # for operation. Compared over 40 iterations, where rounding differences have not yet grown (over ~1000
    # iterations of an unconverged search they do, as between any two implementations).
    from geometry._stiefel import _qf, _stiefel_cg_manopt, _stiefel_cg_manopt_torch

    rng = np.random.default_rng(8)
    P = 40
    X, C = _center_coordinates(rng, P, 80)
    for k in (1, 3, 6):
        V0 = _qf(torch.as_tensor(rng.standard_normal((P - 1, k))))
        fast = _stiefel_cg_manopt(V0, X, C, max_iter=40)
        plain = _stiefel_cg_manopt_torch(V0, X, C, max_iter=40)
        assert not torch.equal(fast, V0)
        torch.testing.assert_close(fast, plain, rtol=0, atol=1e-9)


def test_capacity_centering_skips_the_scaled_copy_bit_for_bit():
    # capacity centers the data at their own scale and scales only the manifold centers by the power of two that
    # _scaled would apply to the data: the centers, and every deviation (invariant to that power of two), are bit
    # for bit those of the scaled copy; worker threads change nothing either.
    from geometry._centering import _deviations, _manifold_means
    from geometry._inputs import _scaled
    from geometry._threads import single_thread

    rng = np.random.default_rng(11)
    N = 300
    ms = [rng.standard_normal((20, N)) * 40 + 2.0 + rng.standard_normal(N) for _ in range(6)]
    ms += [np.asfortranarray(rng.standard_normal((30, N)) - 1.0) * 40, rng.standard_normal((400, N)) * 40]
    W = torch.linalg.qr(torch.as_tensor(rng.standard_normal((N, 8))))[0]
    X, centers = _manifold_means(ms, torch.float64, torch.device("cpu"))
    scaled = [torch.as_tensor(m) for m in _scaled(ms)]
    assert torch.equal(centers, torch.stack([m.mean(0) for m in scaled]))
    for directions in (None, W):
        with single_thread(True):
            want = _deviations(scaled, directions, labels=list(range(8)))
            for workers in (1, 2):
                for dev, ref in zip(_deviations(X, directions, labels=list(range(8)), workers=workers), want):
                    assert torch.equal(dev, ref)


def test_center_search_lockstep_batch_is_each_start_solved_alone():
    # The reference optimizer runs each K's random starts in lockstep (one numpy call per operation for the whole
    # batch); every start's iterates must be bit for bit those of a solve on its own, the start's memory layout
    # included (_qf's starts are column-major, and BLAS rounds products of row-major copies differently).
    from geometry._stiefel import (
        _qf,
        _stack_starts,
        _stiefel_cg_manopt,
        _stiefel_cg_manopt_batch,
    )

    rng = np.random.default_rng(5)
    P = 40
    X, C = _center_coordinates(rng, P, 80)
    g = torch.Generator().manual_seed(2)
    for k in (1, 2, 4):
        starts = [_qf(torch.randn(P - 1, k, generator=g, dtype=torch.float64)) for _ in range(5)]
        batch = _stiefel_cg_manopt_batch(_stack_starts(starts), X, C, max_iter=150)
        for V0, V in zip(starts, batch):
            assert torch.equal(V, _stiefel_cg_manopt(V0, X, C, max_iter=150))
