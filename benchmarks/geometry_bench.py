"""Benchmark of geometry.capacity: fast batched solver vs. one quadratic program at a time (issue 3).

Run:  python benchmarks/geometry_bench.py [--threads 2] [--skip-large] [--qp-manifolds 4] [--repeats 5]
                                         [--large-timeout 300] [--readme-only]

Prints, in one run:
1. P=100 manifolds, m=50 points, N=5000 features, n_t=200: the per-manifold anchor-point stage solved
   (a) by the fast batched NNLS path, (b) one QP at a time as the reference implementation does
   (cvxopt interior point with the reference's tolerances, when cvxopt is installed), (c) one QP at a time with
   scipy SLSQP (our slow reference path) and (d) scipy.optimize.nnls one sample at a time (the fastest sequential
   exact solver we know). The one-at-a-time paths are timed on the first --qp-manifolds manifolds and
   extrapolated linearly to P (each manifold is an independent set of n_t QPs); this is said in the output.
   Then the end-to-end ``geometry.capacity`` call (centering, center-correlation removal, solve).
   Times are wall-clock and process CPU seconds (all threads); on a shared machine the CPU ratio is the
   steadier figure. The load average is printed with each problem.
2. P=1000, m=100, N=2000, n_t=200: end-to-end ``geometry.capacity`` (goal: under 60 s on 2 cores), run in a
   child process that is stopped after --large-timeout seconds (the center-correlation search can run far
   longer); the search's per-K progress is printed as it goes.
3. The reference README's case (its random-data example): P=100 manifolds of m=50 Gaussian points, N=5000,
   n_t=200, kappa=0: ``geometry.capacity`` with its defaults (the reference's center search and K rule) and with
   ``center_search="fast", center_rtol=0.01``, --repeats runs each after one warm-up call, best and median
   (goal: defaults under 2 s, best of --repeats). ``--readme-only`` runs just this problem (about 20 s).
4. Where CUDA is available: problems 1 and 2 on the GPU.
Every timing states the center-correlation search and K rule it used ("center: ..."). Each goal ends with a
MET / NOT MET line: (1) one-QP-at-a-time (cvxopt) / fast >= 100x, wall min vs min; (2) the P=1000 call under
60 s wall; (3) the README case with defaults under 2 s wall (min of --repeats).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time

import numpy as np
import torch

import geometry
from geometry import _mftma
from geometry._anchor_stats import _principal_coordinates, _samples
from geometry._nnls_reference import nnls_reference, qp_reference


def make_manifolds(P: int, m: int, N: int, seed: int = 0) -> list[np.ndarray]:
    """Category-like manifolds: shared low-rank center structure + private centers + anisotropic spread."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((P, 3)) @ rng.standard_normal((3, N))
    centers = shared + rng.standard_normal((P, N))
    out = []
    for i in range(P):
        axes = rng.standard_normal((m, 20)) @ rng.standard_normal((20, N)) / np.sqrt(20)
        out.append(centers[i] + 0.6 * axes + 0.3 * rng.standard_normal((m, N)))
    return out


def deviations(ms: list[np.ndarray]) -> list[torch.Tensor]:
    """The per-manifold inputs of the anchor stage, as ``capacity`` builds them (center correlations kept)."""
    X = np.vstack(ms)
    origin = X.mean(0)
    out = []
    for m in ms:
        c = m.mean(0) - origin
        out.append(torch.as_tensor((m - origin - c) / np.linalg.norm(c)))
    return out


def per_sample_problems(devs: list[torch.Tensor], n_t: int, seed: int, count: int):
    """(S, T) of the first ``count`` manifolds, exactly as the anchor stage builds them."""
    probs = []
    for i in range(count):
        p = devs[i]
        m = p.shape[0]
        D = min(m, p.shape[1])
        C = _principal_coordinates([p], m, D)[0].numpy()
        S = np.vstack([C.T, np.ones((1, m))])
        T = _samples(seed, i, n_t, D)
        probs.append((S, T))
    return probs


def center_rule(**kwargs) -> str:
    """The center-correlation search and K rule that ``geometry.capacity(..., **kwargs)`` runs, in words."""
    if kwargs.get("center_correlation", "remove") == "keep":
        return "center: none (center_correlation='keep', K=0)"
    search = kwargs.get("center_search", "reference")
    rtol = kwargs.get("center_rtol", 0.0)
    n_reps = kwargs.get("n_reps", 10)
    how = (f"reference search ({n_reps} random starts per K, pymanopt 0.2 CG)" if search == "reference" else
           f"fast search ({n_reps} warm starts per K, our CG with plateau stop)")
    rule = "three rises in a row (center_rtol=0, the reference's)" if rtol == 0 else \
        f"three K in a row improving by < {rtol:g} (center_rtol={rtol:g})"
    polish = ", polished" if kwargs.get("center_polish", False) else ""
    return f"center: {how}, K rule: {rule}{polish}"


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


class Timer:
    """Wall-clock and process CPU seconds of a block (CPU time counts every thread of the process)."""

    def __enter__(self) -> Timer:
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w0, time.process_time() - self.c0


def repeat(fn, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Wall and CPU seconds of ``n`` calls of ``fn``."""
    walls, cpus = [], []
    for _ in range(n):
        with Timer() as t:
            fn()
        walls.append(t.wall)
        cpus.append(t.cpu)
    return np.asarray(walls), np.asarray(cpus)


def time_cvxopt(probs, kappa: float) -> Timer | None:
    try:
        from cvxopt import matrix, solvers
    except ImportError:
        return None
    solvers.options.update(show_progress=False, maxiters=1_000_000, abstol=1e-12, reltol=1e-12, feastol=1e-12)
    with Timer() as timer:
        for S, T in probs:
            d, m = S.shape
            P_, G, h = matrix(np.eye(d)), matrix(np.ascontiguousarray(S.T)), matrix(-kappa * np.ones(m))
            for t in T:
                solvers.qp(P_, matrix(-t), G, h)
    return timer


class StageTimes:
    """Wall seconds of the stages of one ``geometry.capacity`` call (center search, anchor analysis)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def wrap(self, name: str, fn):
        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0
        return timed

    def __enter__(self) -> StageTimes:
        self._saved = (_mftma.center_structure, _mftma._anchor_analysis)
        _mftma.center_structure = self.wrap("center-correlation search", _mftma.center_structure)
        _mftma._anchor_analysis = self.wrap("per-manifold reduction + solve", _mftma._anchor_analysis)
        return self

    def __exit__(self, *exc) -> None:
        _mftma.center_structure, _mftma._anchor_analysis = self._saved

    def report(self, total: float) -> str:
        parts = [f"{k} {v:.1f} s" for k, v in self.times.items()]
        rest = total - sum(self.times.values())
        return "; ".join(parts + [f"input checks, centering, projection {rest:.1f} s"])


def bench_small(args, device: str = "cpu") -> None:
    P, m, N, n_t = 100, 50, 5000, 200
    print(f"\n== P={P}, m={m}, N={N}, n_t={n_t}, kappa=0, device={device}; load average {load_average()} ==")
    ms = make_manifolds(P, m, N)
    devs = deviations(ms)
    if device != "cpu":
        devs = [d.to(device) for d in devs]
    _mftma._anchor_analysis(devs[:4], 0.0, n_t, 0, "reference", "fast")  # warm-up
    fast = {}

    def run_fast():
        fast.update(_mftma._anchor_analysis(devs, 0.0, n_t, 0, "reference", "fast"))
        if device != "cpu":
            torch.cuda.synchronize()

    walls, cpus = repeat(run_fast, args.repeats)
    t_fast, c_fast = float(np.min(walls)), float(np.min(cpus))
    print(f"fast batched NNLS, anchor stage only (principal coordinates, samples, solve, summaries; center: no "
          f"search, correlations kept), all {P} manifolds, "
          f"{args.repeats} runs: wall min {t_fast:.3f} s, median {np.median(walls):.3f} s; process CPU min "
          f"{c_fast:.3f} s, median {np.median(cpus):.3f} s")
    if device == "cpu":
        k = args.qp_manifolds
        probs = per_sample_problems([d.cpu() for d in devs], n_t, 0, k)
        scale = P / k
        t_cvx = time_cvxopt(probs, 0.0)
        if t_cvx is None:
            print("cvxopt (reference implementation's solver): not installed, skipped (pip install cvxopt)")
        else:
            print(f"one QP at a time, cvxopt interior point (reference settings), timed on {k} manifolds x {n_t} "
                  f"samples, extrapolated to {P}: wall {t_cvx.wall * scale:.1f} s, CPU {t_cvx.cpu * scale:.1f} s")
            ratio = t_cvx.wall * scale / t_fast
            print(f"RATIO one-QP-at-a-time / fast: wall {ratio:.0f}x (min vs min), "
                  f"CPU {t_cvx.cpu * scale / c_fast:.0f}x")
            print(f"GOAL 1 (>= 100x, wall): {'MET' if ratio >= 100 else 'NOT MET'} ({ratio:.0f}x at load "
                  f"{load_average()})")
        with Timer() as t:
            for S, T in probs[: max(1, k // 2)]:
                qp_reference(S, T[:50], 0.0)
        t_slsqp = t.wall * (n_t / 50) * (P / max(1, k // 2))
        print(f"one QP at a time, scipy SLSQP (slow reference path): {t_slsqp:.1f} s extrapolated from "
              f"{max(1, k // 2)} manifolds x 50 samples; ratio {t_slsqp / t_fast:.0f}x")
        F_ref = []
        with Timer() as t:
            for S, T in probs:
                a = nnls_reference(S, T)
                F_ref.append(((a @ S.T) ** 2).sum(-1).mean())
        t_nnls = t.wall * scale
        print(f"one NNLS at a time, scipy.optimize.nnls: {t_nnls:.2f} s extrapolated from {k} manifolds; "
              f"ratio {t_nnls / t_fast:.1f}x")
        rel = np.abs(1 / np.asarray(F_ref) / fast["alpha"][:k] - 1).max()
        print(f"max relative difference of manifold capacities, fast vs scipy.nnls: {rel:.2e}")
    stages = StageTimes()
    with stages, Timer() as t:
        ds = geometry.capacity(ms, n_t=n_t, device=device)
    print(f"end-to-end geometry.capacity (center correlation removed, K={int(ds.K)}; {center_rule()}): wall "
          f"{t.wall:.2f} s, CPU {t.cpu:.2f} s; capacity={float(ds.capacity):.4f}\n  stages: {stages.report(t.wall)}")


def readme_case() -> list[np.ndarray]:
    """The reference README's example: ``np.random.seed(0); X = [np.random.randn(5000, 50) for i in range(100)]``
    (features x points there; points x features here)."""
    np.random.seed(0)  # noqa: NPY002 - the reference's own legacy-RNG data, value for value
    return [np.random.randn(5000, 50).T for _ in range(100)]  # noqa: NPY002


def bench_readme(args) -> None:
    """The reference README's case end to end, defaults and the fast options (goal 3: defaults under 2 s)."""
    n_t = 200
    print(f"\n== reference README case: P=100, m=50, N=5000 Gaussian, n_t={n_t}, kappa=0, device=cpu; load "
          f"average {load_average()} ==")
    ms = readme_case()
    best, median = {}, {}
    for name, kw in (("defaults", {}), ("fast", {"center_search": "fast", "center_rtol": 0.01})):
        geometry.capacity(ms, n_t=n_t, **kw)  # warm-up (first calls load libraries and fill caches)
        walls, cpus, parts = [], [], []
        for _ in range(args.repeats):
            stages = StageTimes()
            with stages, Timer() as t:
                ds = geometry.capacity(ms, n_t=n_t, **kw)
            walls.append(t.wall)
            cpus.append(t.cpu)
            parts.append(stages.report(t.wall))
        i = int(np.argmin(walls))
        best[name], median[name] = walls[i], float(np.median(walls))
        args_txt = ", ".join(f"{k}={v!r}" for k, v in kw.items()) or "defaults"
        print(f"geometry.capacity({args_txt}) [{center_rule(**kw)}]: K={int(ds.K)}, capacity="
              f"{float(ds.capacity):.4f}, radius={float(ds.radius):.3f}, dimension={float(ds.dimension):.2f}; "
              f"{args.repeats} runs: wall best {walls[i]:.2f} s, median {median[name]:.2f} s; CPU best "
              f"{min(cpus):.2f} s, median {np.median(cpus):.2f} s\n  stages of the fastest run: {parts[i]}")
    print("(reference README: capacity 0.04, radius 1.47, dimension 36.17, K=1)")
    print(f"GOAL 3 (README case with defaults < 2 s): {'MET' if best['defaults'] < 2 else 'NOT MET'} "
          f"(best {best['defaults']:.2f} s, median {median['defaults']:.2f} s of {args.repeats} against the 2 s "
          f"target, {torch.get_num_threads()} torch threads, load average {load_average()})")


LARGE = (1000, 100, 2000, 200)  # P, m, N, n_t


def bench_large(device: str = "cpu") -> None:
    """The P=1000 call itself (run in the child process started by :func:`run_large`)."""
    P, m, N, n_t = LARGE
    ms = make_manifolds(P, m, N, seed=1)
    logging.basicConfig(level=logging.WARNING, format="  %(message)s", stream=sys.stdout)
    logging.getLogger("geometry._center").setLevel(logging.INFO)
    print(f"data generated; load average {load_average()}", flush=True)
    with Timer() as t:
        ds = geometry.capacity(ms, n_t=n_t, device=device, center_correlation="keep")
    print(f"without the center-correlation search ({center_rule(center_correlation='keep')}): wall {t.wall:.1f} s, CPU "
          f"{t.cpu:.1f} s; capacity={float(ds.capacity):.4f}; load average {load_average()}", flush=True)
    stages = StageTimes()
    with stages, Timer() as t:
        ds = geometry.capacity(ms, n_t=n_t, device=device)
    print(f"end-to-end geometry.capacity ({center_rule()}): wall {t.wall:.1f} s (goal < 60 s on 2 cores), "
          f"CPU {t.cpu:.1f} s; "
          f"K={int(ds.K)}, capacity={float(ds.capacity):.4f}; load average {load_average()}\n"
          f"  stages: {stages.report(t.wall)}")
    print(f"GOAL 2 (P=1000 call < 60 s): {'MET' if t.wall < 60 else 'NOT MET'} ({t.wall:.1f} s)", flush=True)


def run_large(args, device: str = "cpu") -> None:
    P, m, N, n_t = LARGE
    print(f"\n== P={P}, m={m}, N={N}, n_t={n_t}, kappa=0, device={device}; load average {load_average()}; "
          f"child process, stopped after {args.large_timeout} s ==", flush=True)
    cmd = [sys.executable, os.path.abspath(__file__), "--large-child", device, "--threads", str(args.threads)]
    try:
        subprocess.run(cmd, timeout=args.large_timeout, check=True)
    except subprocess.TimeoutExpired:
        print(f"GOAL 2 (P=1000 call < 60 s): NOT MET (stopped after {args.large_timeout} s, data generation "
              f"included; load average {load_average()})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--skip-large", action="store_true", help="skip the P=1000 problem")
    ap.add_argument("--qp-manifolds", type=int, default=4, help="manifolds timed one QP at a time (extrapolated)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of the fast path (min and median printed)")
    ap.add_argument("--large-timeout", type=int, default=300, help="seconds before the P=1000 run is stopped")
    ap.add_argument("--readme-only", action="store_true", help="run only the reference README case (problem 3)")
    ap.add_argument("--large-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.large_child:
        bench_large(device=args.large_child)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; timings are wall-clock and noisy on a "
          "shared machine")
    if args.readme_only:
        bench_readme(args)
        return
    bench_small(args)
    bench_readme(args)
    if not args.skip_large:
        run_large(args)
    if torch.cuda.is_available():
        bench_small(args, device="cuda")
        if not args.skip_large:
            run_large(args, device="cuda")
    else:
        print("\nCUDA not available: GPU path not timed")


if __name__ == "__main__":
    main()
