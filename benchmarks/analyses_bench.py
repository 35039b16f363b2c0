"""Timings of the analyses science core on the embedded default (what `make demo` runs), on one torch thread.

Run: python benchmarks/analyses_bench.py [--cache-dir DIR] [--json OUT.json]
Without --cache-dir the texture synthesis runs from scratch (a temporary cache), so its time is measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time

import numpy as np


def main(argv: list[str] | None = None) -> dict:
    import torch

    import analyses
    import data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=None, help="texture cache to reuse (default: a fresh temporary one)")
    parser.add_argument("--json", default=None, help="also write the timings here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    timings: dict[str, float] = {}
    results: dict[str, object] = {}

    cache = args.cache_dir or tempfile.mkdtemp(prefix="analyses-bench-")
    cfg = analyses.TextureStimuliConfig()
    t0 = time.perf_counter()
    stim = analyses.texture_stimuli(cfg, cache_dir=cache)
    timings["texture_stimuli_s"] = time.perf_counter() - t0
    results["n_stimuli"] = int(stim.sizes["stimulus_id"])
    results["synthesis_seconds_recorded"] = float(stim.attrs["synthesis_seconds"])
    tex = stim.texture_type.values == "texture"
    results["ps_loss_texture_median"] = float(np.median(stim.ps_loss.values[tex]))
    results["ps_loss_noise_median"] = float(np.median(stim.ps_loss.values[~tex]))

    t0 = time.perf_counter()
    again = analyses.texture_stimuli(cfg, cache_dir=cache)
    timings["texture_stimuli_cached_s"] = time.perf_counter() - t0
    assert np.array_equal(again.image.values, stim.image.values)

    # Synthesis in worker processes (one family each) against the serial loop, on 4 of the families.
    sub = dataclasses.replace(cfg, families=cfg.families[:4])
    t0 = time.perf_counter()
    serial = analyses.texture_stimuli(sub, cache=False)
    timings["texture_stimuli_4_families_serial_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    parallel = analyses.texture_stimuli(sub, cache=False, workers=2)
    timings["texture_stimuli_4_families_2_workers_s"] = time.perf_counter() - t0
    assert np.array_equal(serial.image.values, parallel.image.values)

    t0 = time.perf_counter()
    rec = analyses.simulated_recording(stim)
    timings["simulated_recording_s"] = time.perf_counter() - t0
    results["recording_shape"] = list(rec.shape)

    t0 = time.perf_counter()
    mod = analyses.texture_modulation(rec)
    timings["texture_modulation_s"] = time.perf_counter() - t0
    results["modulation_V1"] = float(mod.region_mean.sel(region="V1"))
    results["modulation_V2"] = float(mod.region_mean.sel(region="V2"))

    # A model-sized feature set: 4096 random features (e.g. 64 channels x 8 x 8 positions).
    rng = np.random.default_rng(0)
    feats = data.assembly(rng.random((stim.sizes["stimulus_id"], 4096)), stimulus_id=stim.stimulus_id.values,
                          neuroid_id=[f"f{i}" for i in range(4096)])
    for label, pcfg in (("pls25", analyses.PredictivityConfig()),
                        ("pls10_train0.8", analyses.PredictivityConfig(n_components=10, train_size=0.8)),
                        ("ridge", analyses.PredictivityConfig(regression="ridge"))):
        t0 = time.perf_counter()
        pred = analyses.neural_predictivity(feats, rec, pcfg)
        timings[f"predictivity_{label}_4096_features_s"] = time.perf_counter() - t0
        results[f"random_features_score_{label}"] = [float(v) for v in pred.score.values]
    results["ceiling"] = [float(v) for v in pred.ceiling.values]

    reps = rec.repetition.values
    model = analyses.average_repetitions(rec.isel(presentation=np.flatnonzero(reps < 10)))
    model = model.assign_coords(neuroid_id=("neuroid", [f"m{i}" for i in range(model.sizes["neuroid"])]))
    held = rec.isel(presentation=np.flatnonzero(reps >= 10))
    pred = analyses.neural_predictivity(model, held, analyses.PredictivityConfig(n_components=10, train_size=0.8))
    results["self_prediction_score_pls10_train0.8"] = [float(v) for v in pred.score.values]

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        analyses.plot_texture_stimuli(stim, f"{out}/stimuli")
        analyses.plot_texture_modulation({"simulated": mod}, f"{out}/modulation")
        analyses.plot_predictivity({"random": pred}, f"{out}/predictivity")
        timings["three_figures_s"] = time.perf_counter() - t0

    report = {"timings": {k: round(v, 2) for k, v in timings.items()}, "results": results,
              "config": {"texture": cfg.__dict__}}
    print(json.dumps(report, indent=2, default=str))
    if args.json:
        with data.atomic_write(args.json) as tmp:
            tmp.write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
