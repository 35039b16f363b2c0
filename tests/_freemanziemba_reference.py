"""The FreemanZiemba2013-shaped data of the recorded Brain-Score comparison (issue #16, acceptance 1).

15 families x 2 texture types x 4 samples (stimuli listed in a shuffled order), 20 repetitions, 10 V1 and 10 V2
neuroids driven by 8 of 40 model features plus strong trial noise. ``tests/data/brainscore_freemanziemba.json``
holds what Brain-Score computed on exactly these numbers (``data_sha256``); ``record()`` recomputes it in a
Brain-Score environment (the opt-in test ``tests/test_brainscore_interop.py``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).parent / "data" / "brainscore_freemanziemba.json"
REGIONS = np.array(["V1"] * 10 + ["V2"] * 10)


def freemanziemba_shaped(seed: int, *, n_neuroids: int, n_signal: int, noise: float, offset: float = 0.0,
                         n_repetitions: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """FreemanZiemba2013-shaped numbers: 15 families x 2 texture types x 4 samples listed in a shuffled order, 40
    model features, ``n_neuroids`` neuroids driven by the first ``n_signal`` features (plus ``offset``) and
    Gaussian trial noise of s.d. ``noise``.

    Returns ``(stimulus ids, texture types, model features (120, 40), trials (n_repetitions, 120, n_neuroids))``.
    """
    rng = np.random.default_rng(seed)
    fam, kind, sample = np.meshgrid(np.arange(15), ["noise", "texture"], np.arange(4), indexing="ij")
    ids = np.array([f"{k}-{f:02d}-{s}" for f, k, s in zip(fam.ravel(), kind.ravel(), sample.ravel())])
    shuffle = rng.permutation(len(ids))
    ids, types = ids[shuffle], kind.ravel()[shuffle]
    feats = rng.normal(size=(len(ids), 40))
    signal = feats[:, :n_signal] @ rng.normal(size=(n_signal, n_neuroids)) + offset
    trials = signal[None] + noise * rng.normal(size=(n_repetitions, len(ids), n_neuroids))
    return ids, types, feats, trials


def make() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """``(stimulus ids, texture types, model features (120, 40), trials (20, 120, 20), sha256 of the numbers)``."""
    ids, types, feats, trials = freemanziemba_shaped(2026, n_neuroids=len(REGIONS), n_signal=8, noise=8.0,
                                                     offset=3.0)
    digest = hashlib.sha256(np.ascontiguousarray(trials).tobytes() + np.ascontiguousarray(feats).tobytes())
    return ids, types, feats, trials, digest.hexdigest()


#: Run in a Brain-Score environment with ``NPZ`` (the arrays of ``make()``) defined: prints the reference JSON.
BRAINSCORE_SCRIPT = """
import json, numpy as np
import importlib.metadata as md
from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly, NeuronRecordingAssembly
from brainscore_vision import load_metric, load_ceiling
from brainscore_vision.benchmark_helpers.neural_common import average_repetition, explained_variance

z = np.load(NPZ)
ids, types, feats, trials, digest = z["ids"], z["types"], z["feats"], z["trials"], str(z["digest"])
regions = z["regions"]
n_rep, n_stim, n_neu = trials.shape
out = {"data_sha256": digest, "regions": {},
       "versions": {p: md.version(p) for p in ("brainscore-vision", "brainscore-core", "scikit-learn", "xarray",
                                                "numpy", "scipy")},
       "procedure": "FreemanZiemba2013 PLS benchmark: average_repetition, load_metric('pls', "
                    "crossvalidation_kwargs=dict(stratification_coord='texture_type')), "
                    "load_ceiling('internal_consistency') on the repetitions, explained_variance"}
model = NeuroidAssembly(feats, coords={"stimulus_id": ("presentation", ids), "texture_type": ("presentation", types),
                                       "neuroid_id": ("neuroid", [f"f{i}" for i in range(feats.shape[1])])},
                        dims=["presentation", "neuroid"])
for region in ("V1", "V2"):
    cols = np.flatnonzero(regions == region)
    values = trials[:, :, cols].transpose(1, 0, 2).reshape(n_stim * n_rep, len(cols))
    rep = NeuronRecordingAssembly(values, coords={
        "stimulus_id": ("presentation", np.repeat(ids, n_rep)),
        "repetition": ("presentation", np.tile(np.arange(n_rep), n_stim)),
        "texture_type": ("presentation", np.repeat(types, n_rep)),
        "neuroid_id": ("neuroid", [f"n{j:02d}" for j in cols]), "region": ("neuroid", [region] * len(cols))},
        dims=["presentation", "neuroid"])
    metric = load_metric("pls", crossvalidation_kwargs=dict(stratification_coord="texture_type"))
    raw = metric(model, average_repetition(rep))
    ceiling = load_ceiling("internal_consistency")(rep)
    score = explained_variance(raw, ceiling)
    per = raw.attrs["raw"].transpose("split", "neuroid")
    out["regions"][region] = {"raw": float(raw.values), "raw_error": float(raw.attrs["error"].values),
                              "ceiling": float(ceiling.values), "score": float(score.values),
                              "neuroid_id": [str(v) for v in per["neuroid_id"].values],
                              "r_per_split_neuroid": per.values.tolist()}
print(json.dumps(out))
"""


def assemblies():
    """``(model features, neural recording)`` of :func:`make` as workbench assemblies."""
    import data

    ids, types, feats, trials, _ = make()
    n_rep, n_stim, n_neu = trials.shape
    neural = data.assembly(trials.transpose(1, 0, 2).reshape(n_stim * n_rep, n_neu),
                           stimulus_id=np.repeat(ids, n_rep), neuroid_id=[f"n{j:02d}" for j in range(n_neu)],
                           repetition=np.tile(np.arange(n_rep), n_stim),
                           texture_type=("presentation", np.repeat(types, n_rep)), region=("neuroid", REGIONS))
    model = data.assembly(feats, stimulus_id=ids, neuroid_id=[f"f{i}" for i in range(feats.shape[1])])
    return model, neural


def write_npz(path: Path) -> Path:
    ids, types, feats, trials, digest = make()
    np.savez(path, ids=ids, types=types, feats=feats, trials=trials, digest=digest, regions=REGIONS)
    return path
