"""geometry: analytic oracles, invariances, fast vs. reference solvers, input checks, IO (issue 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.spatial import ConvexHull
from scipy.stats import special_ortho_group

import data
import geometry
from geometry import _mftma

N_SIGMA = 4.0  # tolerance in standard errors of the Monte-Carlo estimate (two-sided p ~ 6e-5 per check)


def _mc(F_fn, dim: int, n_t: int, n_mc: int = 400_000, seed: int = 123) -> tuple[float, float]:
    """Exact capacity 1/E[F] (by a large Monte-Carlo) and the relative standard error of an n_t-sample estimate."""
    t = np.random.default_rng(seed).standard_normal((n_mc, dim + 1))
    F = F_fn(t[:, :-1], t[:, -1])
    return 1.0 / F.mean(), F.std() / F.mean() / math.sqrt(n_t)


def _ball_F(R: float, kappa: float = 0.0):
    """F(T) for a D-ball of radius R: ||projection of t' on the cone {(y, s): |y| <= R s}||^2 (closed form)."""

    def F(y: np.ndarray, s: np.ndarray) -> np.ndarray:
        s = s + kappa
        u = np.linalg.norm(y, axis=1)
        inside = u <= R * s
        polar = R * u <= -s
        out = (R * u + s) ** 2 / (1 + R * R)
        out = np.where(inside, u * u + s * s, out)
        return np.where(polar, 0.0, out)

    return F


# --- 1. analytic oracles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kappa", [0.0, 0.5, 1.0, 2.0])
def test_point_manifolds_give_gardner_capacity(kappa):
    # A manifold of two identical points at its center is a point: F = max(t_0 + kappa, 0)^2.
    n_t = 20_000
    ds = geometry.manifold_geometry([np.zeros((2, 3))], kappa=kappa, n_t=n_t)
    _, rel_se = _mc(lambda y, s: np.maximum(s + kappa, 0) ** 2, 0, n_t)
    expected = geometry.gardner_capacity(kappa)
    assert abs(float(ds.capacity) / expected - 1) < N_SIGMA * rel_se
    assert float(ds.radius) == pytest.approx(0.0, abs=1e-12)


def test_gardner_constants():
    assert geometry.gardner_capacity(0.0) == 2.0
    assert geometry.gardner_capacity(1.0) == pytest.approx(0.519572, abs=1e-6)
    assert geometry.gardner_capacity(2.0) == pytest.approx(0.200231, abs=1e-6)


def _fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5 ** 0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)


def _inradius(points: np.ndarray) -> float:
    if points.shape[1] == 1:
        return float(np.abs(points).min())
    hull = ConvexHull(points)
    return float(-hull.equations[:, -1].max())


@pytest.mark.parametrize("D", [1, 2, 3])
def test_unit_balls_give_two_over_d_plus_one(D):
    # The ball is realised by points on its sphere (convex hull = a polytope between the inscribed ball of radius
    # r_in and the unit ball). The exact ball capacities of radius 1 and r_in (closed-form cone projection,
    # large Monte-Carlo) bracket the estimate; the bracket is widened by N_SIGMA standard errors of n_t samples.
    n_t = 6000
    points = {1: np.array([[-1.0], [1.0]]),
              2: np.stack([np.cos(a := np.linspace(0, 2 * np.pi, 128, endpoint=False)), np.sin(a)], axis=1),
              3: _fibonacci_sphere(250)}[D]
    r_in = _inradius(points)
    alpha_1, rel_se = _mc(_ball_F(1.0), D, n_t)
    alpha_in, _ = _mc(_ball_F(r_in), D, n_t)
    assert alpha_1 == pytest.approx(geometry.ball_capacity(D), rel=5e-3)  # the closed form agrees with 2/(D+1)
    ds = geometry.manifold_geometry([points], n_t=n_t)
    est = float(ds.capacity)
    assert alpha_1 * (1 - N_SIGMA * rel_se) <= est <= alpha_in * (1 + N_SIGMA * rel_se)
    assert abs(est / geometry.ball_capacity(D) - 1) < N_SIGMA * rel_se + (alpha_in / alpha_1 - 1) + 5e-3
    # Anchor points of a ball lie on its sphere along t: the reference dimension is D.
    assert float(ds.dimension) == pytest.approx(D, rel=0.03)


@pytest.mark.parametrize("kappa", [0.0, 1.0])
@pytest.mark.parametrize("D", [1, 2, 3])
def test_large_cross_polytopes_give_subspace_capacity(D, kappa):
    # +-R e_i with R = 1e4 spans an affine subspace for every Gaussian t (|t| << R): F = |t_D|^2 + max(t0+k, 0)^2.
    n_t = 6000
    R = 1e4
    pts = np.vstack([R * np.eye(D), -R * np.eye(D)])
    ds = geometry.manifold_geometry([pts], kappa=kappa, n_t=n_t)
    _, rel_se = _mc(lambda y, s: (y * y).sum(1) + np.maximum(s + kappa, 0) ** 2, D, n_t)
    expected = geometry.subspace_capacity(D, kappa)
    assert abs(float(ds.capacity) / expected - 1) < N_SIGMA * rel_se + 1e-3


def test_simulated_capacity_of_points_follows_cover():
    # 40 point manifolds in general position; with a bias the separable fraction at projection dimension n is
    # 2^(1-P) sum_{k<n+1} C(P-1, k) for uniformly random dichotomies (Cover 1965).
    rng = np.random.default_rng(0)
    P, reps = 40, 60
    pts = [np.repeat(rng.standard_normal((1, 60)), 2, axis=0) for _ in range(P)]
    ds = geometry.simulated_capacity(pts, n_dichotomies=reps, balanced=False, seed=1)
    for n, frac in zip(ds.dimension.values, ds.separable_fraction.values):
        exact = 2.0 ** (1 - P) * sum(math.comb(P - 1, k) for k in range(min(n + 1, P)))
        se = math.sqrt(max(exact * (1 - exact), 1e-4) / reps)
        assert abs(frac - exact) <= N_SIGMA * se + 1e-9, (n, frac, exact)
    # Exact n_c = P/2 - 1 (fraction exactly 1/2), so alpha = P / n_c ~ 2 (2.11 at P = 40); the estimate lies
    # between the neighbouring dimensions.
    assert P / (P / 2) <= float(ds.capacity) <= P / (P / 2 - 2)


# --- 2. invariances and determinism ---------------------------------------------------------------------------


def _random_manifolds(P=6, m=12, N=20, seed=0, vary=True):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((P, N)) * 2 + rng.standard_normal(N) * 3
    ms = [centers[i] + rng.standard_normal((m, N)) * rng.uniform(0.5, 1.5) for i in range(P)]
    if vary:
        ms[1] = ms[1][: m - 4]
        ms[2] = np.vstack([ms[2], centers[2] + rng.standard_normal((N + 5 - m, N))])  # m_i > N
    return ms


@pytest.mark.parametrize("center_correlation, rtol", [("keep", 1e-7), ("remove", 1e-5)])
def test_rotation_scaling_permutation_invariance(center_correlation, rtol):
    ms = _random_manifolds()
    rng = np.random.default_rng(5)
    Q = special_ortho_group.rvs(ms[0].shape[1], random_state=3)
    kw = dict(n_t=100, center_correlation=center_correlation)
    ref = geometry.capacity(ms, **kw)
    variants = {
        "rotation": [x @ Q for x in ms],
        "scaling": [x * 7.3 for x in ms],
        "permutation": [x[rng.permutation(len(x))] for x in ms],
    }
    for name, xs in variants.items():
        out = geometry.capacity(xs, **kw)
        for v in ("manifold_capacity", "manifold_radius", "manifold_dimension"):
            np.testing.assert_allclose(out[v].values, ref[v].values, rtol=rtol, err_msg=f"{name}: {v}")
        assert int(out.K) == int(ref.K)


def test_same_call_twice_gives_same_numbers():
    ms = _random_manifolds(seed=2)
    a = geometry.capacity(ms, n_t=50, seed=4)
    b = geometry.capacity(ms, n_t=50, seed=4)
    xr.testing.assert_identical(a, b)
    c = geometry.capacity(ms, n_t=50, seed=5)
    assert not np.allclose(a.manifold_capacity.values, c.manifold_capacity.values)


# --- 5. input checks before any solve -------------------------------------------------------------------------


@pytest.fixture()
def no_solve(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a solve started before the input was checked")

    monkeypatch.setattr(_mftma, "nnls_batched", boom)
    monkeypatch.setattr(_mftma, "center_structure", boom)


def _assembly(n_per=10, cats=("a", "b", "c"), N=8, seed=0):
    rng = np.random.default_rng(seed)
    n = n_per * len(cats)
    return data.assembly(rng.standard_normal((n, N)) + np.repeat(rng.standard_normal((len(cats), N)) * 3, n_per, 0),
                         stimulus_id=[f"s{i}" for i in range(n)], neuroid_id=[f"n{i}" for i in range(N)],
                         category=np.repeat(list(cats), n_per))


@pytest.mark.parametrize(
    "make, kwargs, match",
    [
        (lambda: [np.ones((3, 4))], {}, "at least 2 manifolds"),
        (lambda: [np.ones((3, 4)), np.ones((1, 4))], {}, "at least 2"),
        (lambda: [np.ones((3, 4)), np.full((3, 4), np.nan)], {}, "NaN"),
        (lambda: [np.ones((3, 4)), np.full((3, 4), np.inf)], {}, "inf"),
        (lambda: [np.ones((3, 4)), np.ones((3, 5))], {}, "same number of features"),
        (lambda: _assembly(), {"by": "object_name"}, "no 'object_name' coordinate"),
        (lambda: _assembly(), {"kappa": -0.1}, "kappa"),
        (lambda: _assembly(), {"kappa": float("nan")}, "kappa"),
        (lambda: _assembly(), {"n_t": 0}, "n_t"),
        (lambda: _assembly(), {"n_t": 2.5}, "n_t"),
        (lambda: _assembly(), {"center_correlation": "drop"}, "center_correlation"),
        (lambda: _assembly(cats=("a", "b")), {}, "at least 3 manifolds"),
        (lambda: [np.ones((2, 4)) + [[1, 0, 0, 0], [-1, 0, 0, 0]], -np.ones((2, 4)) + [[0, 1, 0, 0], [0, -1, 0, 0]],
                  np.array([[0, 0, 1.0, 0], [0, 0, -1.0, 0]])],
         {"center_correlation": "keep"}, "coincides with the global mean"),
    ],
)
def test_bad_input_raises_value_error_before_solving(no_solve, make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        geometry.capacity(make(), **kwargs)


def test_bad_input_other_measures():
    with pytest.raises(ValueError, match="at least 2 manifolds"):
        geometry.simulated_capacity([np.ones((3, 4))])
    with pytest.raises(ValueError, match="no 'category' coordinate"):
        a = _assembly()
        geometry.alignment(a.drop_vars("category"))
    with pytest.raises(ValueError, match="cv=5 folds"):
        geometry.decodability([np.ones((3, 4)), np.zeros((3, 4))])
    with pytest.raises(TypeError):
        geometry.capacity(np.ones((4, 4)))


# --- 6. assemblies (hand-built and recorded), IO ---------------------------------------------------------------


def test_assembly_and_list_inputs_agree_and_save(tmp_path):
    a = _assembly(n_per=12)
    ds = geometry.capacity(a, by="category", n_t=60)
    assert list(ds.manifold.values) == ["a", "b", "c"]
    lst = [a.values[a.category.values == c] for c in ("a", "b", "c")]
    ds_list = geometry.capacity(lst, n_t=60)
    np.testing.assert_allclose(ds.manifold_capacity.values, ds_list.manifold_capacity.values, rtol=1e-12)
    p = data.save(ds, tmp_path / "capacity.nc", seed=0)
    back = data.load(p)
    np.testing.assert_allclose(back.manifold_capacity.values, ds.manifold_capacity.values)
    assert float(back.capacity) == pytest.approx(float(ds.capacity))
    for fn in (geometry.alignment, geometry.decodability):
        data.save(fn(a), tmp_path / f"{fn.__name__}.nc")
    data.save(geometry.simulated_capacity(a, n_dichotomies=4), tmp_path / "sim.nc")


def test_recorded_model_assembly():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3), torch.nn.ReLU())
    rng = np.random.default_rng(0)
    imgs = np.clip(np.repeat(rng.random((3, 1, 8, 8)), 8, 0) + 0.1 * rng.standard_normal((24, 1, 8, 8)), 0, 1)[:, 0]
    s = data.stimulus_set(imgs, category=np.repeat(["x", "y", "z"], 8))
    rec = data.record(net, s, layers=["1"], progress=False)["1"]
    ds = geometry.capacity(rec, n_t=40)
    assert ds.manifold_capacity.sizes["manifold"] == 3
    assert np.isfinite(ds.manifold_capacity.values).all()
    assert np.isfinite(float(geometry.alignment(rec).axis_alignment))


# --- alignment and decodability ---------------------------------------------------------------------------------


def test_alignment_known_geometry_and_rotation_invariance():
    e = np.eye(4)
    # Centers along e0, e1, e2 (orthogonal after removing their mean? no: use relative-to-global-mean centers);
    # every manifold extends along the same axis e3: axis alignment 1, axes orthogonal to all centers.
    ms = [10 * e[i] + np.outer(np.linspace(-1, 1, 5), e[3]) for i in range(3)]
    ds = geometry.alignment(ms)
    assert float(ds.axis_alignment) == pytest.approx(1.0)
    assert float(ds.center_axis_alignment) == pytest.approx(0.0, abs=1e-12)
    Q = special_ortho_group.rvs(4, random_state=0)
    rot = geometry.alignment([x @ Q for x in ms])
    for v in ("center_alignment", "axis_alignment", "center_axis_alignment", "center_correlation"):
        assert float(rot[v]) == pytest.approx(float(ds[v]), abs=1e-10)


def test_decodability_separable_and_chance():
    rng = np.random.default_rng(0)
    sep = [rng.standard_normal((20, 5)) + 6 * np.eye(5)[i] for i in range(3)]
    assert float(geometry.decodability(sep).accuracy) == 1.0
    same = [rng.standard_normal((40, 5)) for _ in range(2)]
    ds = geometry.decodability(same)
    assert float(ds.accuracy) < 0.75  # no signal: near (cross-validation often below) chance
    assert float(ds.chance) == 0.5


# --- GPU -------------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu():
    ms = _random_manifolds()
    cpu = geometry.capacity(ms, n_t=100)
    gpu = geometry.capacity(ms, n_t=100, device="cuda")
    for v in ("manifold_capacity", "manifold_radius", "manifold_dimension"):
        np.testing.assert_allclose(gpu[v].values, cpu[v].values, rtol=1e-6)


# --- agreement with the reference code on planted low-rank centers (values recorded by the opt-in test) ---------


def test_capacity_defaults_agree_with_the_recorded_reference_on_planted_centers():
    # tests/data/mftma_reference_planted.json: the reference manifold_analysis_corr (schung039/
    # neural_manifolds_replicaMFT, unmodified, pymanopt 0.2.5) and geometry.capacity on P = 100 manifolds whose centers
    # are a shared rank-3 structure + private noise, where the three-rise K rule matters (the residual correlation
    # falls from 0.33 to 0.047 over K = 1..3, then by < 0.5 % per direction until it rises again near K = 10; the
    # center_rtol=0.01 option stops at K = 3-8 instead), 10 seeds each (written by
    # `python tests/test_mftma_reference.py --record`; `pytest -m mftma_reference` reruns both).
    # Here: one seed of our defaults against the reference's mean. If our value x and the n reference values are
    # draws from one distribution of sd sigma, x - mean(ref) has sd sigma * sqrt(1 + 1/n). Both recorded sets
    # estimate sigma; the larger of their two sds is used (the reference's K is 10 in 8 of its 10 seeds, so its own sd
    # alone understates how K varies), and the difference must stay within 4 of those sds (two-sided p ~ 0.003 for a
    # t distribution with 9 degrees of freedom).
    import json
    from pathlib import Path

    rec = json.loads((Path(__file__).parent / "data" / "mftma_reference_planted.json").read_text())
    d = rec["data"]
    rng = np.random.default_rng(d["data_seed"])
    shared = rng.standard_normal((d["P"], d["rank"])) @ rng.standard_normal((d["rank"], d["N"]))
    centers = d["shared_scale"] * shared + rng.standard_normal((d["P"], d["N"]))
    points = [c + d["spread"] * rng.standard_normal((d["m"], d["N"])) for c in centers]
    X = np.stack(points)  # the recorded data, regenerated (its recipe is in the record)
    np.testing.assert_allclose([X.sum(), (X * X).sum(), *X[0, 0, :3]],
                               [d["checksum"]["sum"], d["checksum"]["sum_sq"], *d["checksum"]["first"]], rtol=1e-12)
    seed = rec["seeds"][0]
    ds = geometry.capacity(points, kappa=rec["kappa"], n_t=rec["n_t"], seed=seed)
    for q in ("K", "capacity", "radius", "dimension"):
        ref = np.array([r[q] for r in rec["reference_runs"]], dtype=float)
        mine = np.array([r[q] for r in rec["our_runs"]["defaults"]], dtype=float)
        sigma = max(ref.std(ddof=1), mine.std(ddof=1))
        tol = 4.0 * sigma * math.sqrt(1 + 1 / ref.size)
        value = float(ds[q])
        assert abs(value - ref.mean()) <= tol, (q, value, ref.mean(), tol)
