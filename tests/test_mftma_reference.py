"""Opt-in (``pytest -m mftma_reference``): ``geometry.capacity`` with its defaults against the reference code.

The reference is ``mftma/manifold_analysis_correlation.py`` of schung039/neural_manifolds_replicaMFT
(``manifold_analysis_corr``), run unmodified in its own environment: ``$LCL_MFTMA_PYTHON`` if set, else
``.venv-mftma`` next to this repository, built on first use (pymanopt 0.2.5, autograd, cvxopt, numpy<2, scipy;
needs PyPI). Its source is exported into a temporary folder from a clone of that repository:
``$LCL_MFTMA_REFERENCE`` (a checkout or a bare git directory), else ``../.mirror/schung039+
neural_manifolds_replicaMFT/repo`` beside this repository. Without a clone or an environment the test skips with
the reason. It is slow: the reference solves one cvxopt QP per sample and runs pymanopt on autograd (about
4-8 minutes per seed on 2 cores).

Data where the ``K`` rule matters (:func:`planted`): P = 100 manifolds whose centers are a shared rank-3 structure
plus private noise; removing center directions 1-3 lowers the mean absolute residual center correlation from 0.33
to 0.047, every further one by ~0.3 % at most (fitting noise), so the three-rise rule stops somewhere between
K = 5 and 15 depending on the random starts. The reference and ``geometry.capacity`` run on the same data with
``SEEDS`` (the reference's global numpy seed; our ``seed``; default 0-4, ``$LCL_MFTMA_SEEDS`` to change); their
means must agree within sampling error (Welch z-score of the difference of the means below ``Z_MAX`` for K,
capacity, radius and dimension).

``python tests/test_mftma_reference.py --record`` runs both (our defaults and each center-search option) and writes
``tests/data/mftma_reference_planted.json``, which the default suite checks (``tests/test_geometry.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.mftma_reference

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "tests" / "data" / "mftma_reference_planted.json"
REFERENCE_REPOSITORY = "schung039/neural_manifolds_replicaMFT"
REFERENCE_FILE = "mftma/manifold_analysis_correlation.py"
REFERENCE_PACKAGES = ["pymanopt==0.2.5", "autograd", "cvxopt", "numpy<2", "scipy"]

#: The planted data set (see :func:`planted`) and the analysis settings.
DATA = dict(P=100, m=20, N=300, rank=3, shared_scale=1.0, spread=0.5, data_seed=0)
N_T, KAPPA, N_REPS = 100, 0.0, 10
SEEDS = [int(s) for s in os.environ.get("LCL_MFTMA_SEEDS", "0,1,2,3,4").split(",")]  # more: LCL_MFTMA_SEEDS=0,1,...
#: Largest accepted |z| of the difference of the means (Welch; 5 + 5 seeds, so the sd estimates are rough).
Z_MAX = 4.0
#: Our settings measured by ``--record``: the defaults and each option of the center-correlation search.
OPTIONS = {
    "defaults": {},
    "center_search='fast'": {"center_search": "fast"},
    "center_rtol=0.01": {"center_rtol": 0.01},
    "center_polish=True": {"center_polish": True},
    "center_search='fast', center_rtol=0.01": {"center_search": "fast", "center_rtol": 0.01},
}
QUANTITIES = ("K", "capacity", "radius", "dimension")

PLANTED_RECIPE = '''\
rng = np.random.default_rng(data_seed)
shared = rng.standard_normal((P, rank)) @ rng.standard_normal((rank, N))
centers = shared_scale * shared + rng.standard_normal((P, N))
points = [c + spread * rng.standard_normal((m, N)) for c in centers]   # P arrays (m, N)'''


def planted(P: int = 100, m: int = 20, N: int = 300, rank: int = 3, shared_scale: float = 1.0, spread: float = 0.5,
            data_seed: int = 0) -> list[np.ndarray]:
    """P manifolds of m points in N features: centers = shared rank-``rank`` structure + private noise, points =
    center + isotropic Gaussian spread (the recipe ``PLANTED_RECIPE`` stored with the recorded values)."""
    rng = np.random.default_rng(data_seed)
    shared = rng.standard_normal((P, rank)) @ rng.standard_normal((rank, N))
    centers = shared_scale * shared + rng.standard_normal((P, N))
    return [c + spread * rng.standard_normal((m, N)) for c in centers]


def checksum(points: list[np.ndarray]) -> dict:
    """Summaries of the data that the default suite compares (rtol 1e-12) before trusting the recorded values."""
    X = np.stack(points)
    return {"sum": float(X.sum()), "sum_sq": float((X * X).sum()), "first": X[0, 0, :3].tolist()}


REFERENCE_RUNNER = '''
import json, sys, time, warnings
import numpy as np
args = json.loads(sys.argv[1])
sys.path.insert(0, args["src"])
warnings.filterwarnings("ignore")  # the reference divides by zero in autograd traces; harmless, very verbose
import manifold_analysis_correlation as ref
curves = []
_fun_FA = ref.fun_FA
def fun_FA(*a, **k):  # unchanged; only records the residual-correlation curve it returns
    out = _fun_FA(*a, **k)
    curves.append([float(v) for v in out[4]])
    return out
ref.fun_FA = fun_FA
XtotT = [p.T for p in np.load(args["data"])]  # (N, m) per manifold, as the reference takes them
for seed in args["seeds"]:
    np.random.seed(seed)
    t0 = time.perf_counter()
    a, R, D, res0, K = ref.manifold_analysis_corr(XtotT, args["kappa"], args["n_t"], n_reps=args["n_reps"])
    print(json.dumps({"seed": seed, "K": int(K), "capacity": float(1 / np.mean(1 / a)), "radius": float(np.mean(R)),
                      "dimension": float(np.mean(D)), "center_correlation": float(res0), "curve": curves[-1],
                      "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
'''

VERSIONS = '''
import json, sys, importlib.metadata as md
print(json.dumps({"python": sys.version.split()[0], **{p: md.version(p) for p in
                  ("numpy", "scipy", "pymanopt", "autograd", "cvxopt")}}))
'''


# --- the reference environment and source ----------------------------------------------------------------------


def reference_python() -> tuple[str | None, str]:
    """The reference environment's python, built on first use; ``(None, reason)`` when it cannot be."""
    if os.environ.get("LCL_MFTMA_PYTHON"):
        return os.environ["LCL_MFTMA_PYTHON"], ""
    env = REPO / ".venv-mftma"
    py = env / "bin" / "python"
    probe = [str(py), "-c", "import pymanopt, autograd, cvxopt, scipy; from pymanopt.solvers import ConjugateGradient"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return str(py), ""
    steps = [[sys.executable, "-m", "venv", str(env)],
             [str(py), "-m", "pip", "install", "-q", *REFERENCE_PACKAGES], probe]
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"could not build the reference environment ({' '.join(cmd[-2:])}): {exc}"
        if proc.returncode != 0:
            err = proc.stderr.strip().splitlines()
            return None, f"could not build the reference environment ({' '.join(cmd[-2:])}): " + \
                (err[-1] if err else str(proc.returncode))
    return str(py), ""


def reference_source(dest: Path) -> tuple[str | None, str]:
    """Export the reference module into ``dest``; ``(commit, "")`` or ``(None, reason)``."""
    candidates = [os.environ.get("LCL_MFTMA_REFERENCE"),
                  str(REPO.parent / ".mirror" / "schung039+neural_manifolds_replicaMFT" / "repo")]
    for cand in filter(None, candidates):
        path = Path(cand)
        if (path / REFERENCE_FILE).is_file():  # a checkout
            (dest / Path(REFERENCE_FILE).name).write_text((path / REFERENCE_FILE).read_text())
            rev = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
            return (rev.stdout.strip() if rev.returncode == 0 else "unknown (not a git checkout)"), ""
        show = subprocess.run(["git", f"--git-dir={path}", "show", f"HEAD:{REFERENCE_FILE}"], capture_output=True,
                              text=True)
        if show.returncode == 0:
            (dest / Path(REFERENCE_FILE).name).write_text(show.stdout)
            rev = subprocess.run(["git", f"--git-dir={path}", "rev-parse", "HEAD"], capture_output=True, text=True)
            return rev.stdout.strip(), ""
    return None, (f"no clone of {REFERENCE_REPOSITORY} found (set LCL_MFTMA_REFERENCE to a checkout or a bare git "
                  "directory)")


def run_reference(python: str, src: Path, points: list[np.ndarray], seeds: list[int], log=None) -> list[dict]:
    """The reference's ``manifold_analysis_corr`` on ``points`` for each seed (one subprocess, results per seed)."""
    data_path = src / "points.npy"
    np.save(data_path, np.stack(points))
    args = json.dumps({"src": str(src), "data": str(data_path), "seeds": list(seeds), "kappa": KAPPA, "n_t": N_T,
                       "n_reps": N_REPS})
    proc = subprocess.Popen([python, "-c", textwrap.dedent(REFERENCE_RUNNER), args], cwd=src, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = []
    assert proc.stdout is not None
    for line in proc.stdout:
        out.append(json.loads(line))
        if log:
            log(f"reference seed {out[-1]['seed']}: K={out[-1]['K']} capacity={out[-1]['capacity']:.4f} "
                f"({out[-1]['seconds']} s)")
    err = proc.stderr.read() if proc.stderr else ""
    assert proc.wait() == 0, err[-3000:]
    return out


def run_ours(points: list[np.ndarray], seeds: list[int], options: dict, log=None) -> list[dict]:
    import geometry

    out = []
    for seed in seeds:
        t0 = time.perf_counter()
        ds = geometry.capacity(points, kappa=KAPPA, n_t=N_T, seed=seed, **options)
        out.append({"seed": seed, "K": int(ds.K), "capacity": float(ds.capacity), "radius": float(ds.radius),
                    "dimension": float(ds.dimension), "seconds": round(time.perf_counter() - t0, 1)})
        if log:
            log(f"ours {options or 'defaults'} seed {seed}: K={out[-1]['K']} capacity={out[-1]['capacity']:.4f} "
                f"({out[-1]['seconds']} s)")
    return out


def compare(ref: list[dict], ours: list[dict]) -> dict[str, dict[str, float]]:
    """Mean and sd over seeds of each quantity for both, and the Welch z-score of the difference of the means."""
    table = {}
    for q in QUANTITIES:
        r = np.array([x[q] for x in ref], dtype=float)
        o = np.array([x[q] for x in ours], dtype=float)
        se = float(np.sqrt(r.var(ddof=1) / r.size + o.var(ddof=1) / o.size))
        diff = float(o.mean() - r.mean())
        z = diff / se if se > 0 else (0.0 if diff == 0 else float("inf"))
        table[q] = {"reference_mean": float(r.mean()), "reference_sd": float(r.std(ddof=1)),
                    "ours_mean": float(o.mean()), "ours_sd": float(o.std(ddof=1)), "z": z}
    return table


# --- the opt-in test --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    python, reason = reference_python()
    if python is None:
        pytest.skip(reason)
    src = tmp_path_factory.mktemp("mftma_reference")
    commit, reason = reference_source(src)
    if commit is None:
        pytest.skip(reason)
    return python, src


@pytest.mark.timeout(4 * 3600)
def test_capacity_defaults_match_the_reference_within_sampling_error(reference):
    python, src = reference
    points = planted(**DATA)
    ref = run_reference(python, src, points, SEEDS)
    ours = run_ours(points, SEEDS, {})
    table = compare(ref, ours)
    for q, row in table.items():
        assert abs(row["z"]) < Z_MAX, (q, row, ref, ours)


# --- recording the values that the default suite checks ----------------------------------------------------------


def record(seeds: list[int], out: Path, reference_jsonl: Path | None = None) -> dict:
    """Run the reference and ours (defaults and options) and write the record that tests/test_geometry.py uses."""
    import torch

    import geometry  # noqa: F401

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    python, reason = reference_python()
    if python is None:
        raise SystemExit(reason)
    points = planted(**DATA)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        commit, reason = reference_source(src)
        if commit is None:
            raise SystemExit(reason)
        versions = json.loads(subprocess.run([python, "-c", VERSIONS], capture_output=True, text=True,
                                             check=True).stdout)
        if reference_jsonl is not None:  # reference runs made earlier with REFERENCE_RUNNER on the same data
            ref = [json.loads(line) for line in reference_jsonl.read_text().splitlines() if line.strip()]
            ref = sorted((r for r in ref if r["seed"] in seeds), key=lambda r: r["seed"])
            missing = sorted(set(seeds) - {r["seed"] for r in ref})
            ref += run_reference(python, src, points, missing, log) if missing else []
            ref.sort(key=lambda r: r["seed"])
        else:
            ref = run_reference(python, src, points, seeds, log)
    ours = {name: run_ours(points, seeds, opts, log) for name, opts in OPTIONS.items()}
    rec = {
        "description": "geometry.capacity against the reference manifold_analysis_corr on planted rank-3 center "
                       "structure (tests/test_mftma_reference.py --record); tests/test_geometry.py checks the "
                       "defaults against the reference values",
        "reference": {"repository": REFERENCE_REPOSITORY, "commit": commit, "file": REFERENCE_FILE,
                      "call": f"np.random.seed(seed); manifold_analysis_corr([x.T for x in points], kappa={KAPPA:g}, "
                              f"n_t={N_T}, n_reps={N_REPS}); capacity = 1/mean(1/a), radius/dimension plain means",
                      "versions": versions},
        "ours": {"call": f"geometry.capacity(points, kappa={KAPPA:g}, n_t={N_T}, seed=seed, **options)",
                 "versions": {"python": platform.python_version(), "numpy": np.__version__,
                              "torch": torch.__version__}},
        "data": {**DATA, "recipe": PLANTED_RECIPE, "checksum": checksum(points)},
        "kappa": KAPPA, "n_t": N_T, "n_reps": N_REPS, "seeds": list(seeds),
        "reference_runs": ref,
        "our_runs": ours,
        "summary": {name: compare(ref, runs) for name, runs in ours.items()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rec, indent=1) + "\n")
    log(f"wrote {out}")
    return rec


def _table(rec: dict) -> str:
    lines = [f"{'':42s} " + "  ".join(f"{q:>22s}" for q in QUANTITIES)]
    first = next(iter(rec["summary"].values()))
    lines.append(f"{'reference (mean +- sd)':42s} " + "  ".join(
        f"{first[q]['reference_mean']:11.4f} +- {first[q]['reference_sd']:6.4f}" for q in QUANTITIES))
    for name, table in rec["summary"].items():
        lines.append(f"{name:42s} " + "  ".join(
            f"{table[q]['ours_mean']:8.4f}+-{table[q]['ours_sd']:6.4f} z{table[q]['z']:+5.1f}" for q in QUANTITIES))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", action="store_true", help=f"run both and write {RECORD.relative_to(REPO)}")
    ap.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    ap.add_argument("--reference-jsonl", type=Path, default=None,
                    help="reference results made earlier by REFERENCE_RUNNER on the same data (one JSON per line)")
    ap.add_argument("--out", type=Path, default=RECORD)
    args = ap.parse_args()
    if args.record:
        print(_table(record(args.seeds, args.out, args.reference_jsonl)))
    elif args.out.exists():
        print(_table(json.loads(args.out.read_text())))
