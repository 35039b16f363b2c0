"""V2 texture selectivity of LCL and its controls (issue 14), measured with the field's protocol.

For each seed it trains, at the demo budget, LCL (layerwise, receptive-field-matched deformations), the two
ablations (one amplitude for both stages; end-to-end), and builds two controls: the untrained model and a
random-stage-2 control (LCL's trained stage 1, the initial stage 2). Both controls keep the initial filters'
directions but take the norms of the trained LCL filters, so their outputs have the trained model's scale. It then
sweeps the stage-2 deformation amplitude (``deform.stage_scale = (1, k)``, each a full
layerwise run). Every model is read with :func:`analyses.record_units` (one unit per channel, the one whose
receptive field is centred on the stimulus) on the protocol stimuli (:class:`analyses.TextureStimuliConfig`
defaults: 12 families x 8 samples of Portilla-Simoncelli textures and spectrally matched noise, 128 px in a
raised-cosine aperture at the centre of a 2x grey canvas), and scored with :func:`analyses.texture_modulation`
(responsive units only).

Prints one table: per model and stage, the mean modulation index over seeds with a hierarchical bootstrap 95 %
interval (seeds, then units), the median, the fraction of units with index > 0, the responsive fraction, the
silent stage-2 channels on natural patches (from the training checkpoint) and the training time per model.
Writes ``texture_bench.json`` (all numbers, per seed) into ``--out``.

The primate reference (Freeman et al. 2013; Ziemba et al. 2016): V2 units 0.1-0.2 on average, V1 about 0.

Usage: ``python benchmarks/texture_bench.py [--seeds 3] [--sweep 0.5,1,2,4] [--sweep-seeds 3] [--out DIR]``
(about 40 minutes on 2 CPU cores at the defaults; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import analyses  # noqa: E402
import data  # noqa: E402
import lcl  # noqa: E402

TRAINED = lcl.ABLATIONS
ORDER = ["lcl", "fixed", "end_to_end", "untrained", "random_stage2"]


def _train(cfg: lcl.LCLConfig, folder: Path) -> tuple[lcl.V1V2, float, dict]:
    """Train (or reuse a finished run in ``folder``); return the model, its training seconds and silent fractions."""
    if not (folder / "model.pt").is_file():
        lcl.train(cfg, folder, resume=(folder / "checkpoint.pt").is_file())
    state = torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=False)
    return lcl.load_model(folder), float(state["wall_s"]), dict(state.get("silent_fraction", {}))


def _match_norms(stage: lcl.Stage, reference: lcl.Stage) -> None:
    """Rescale each filter of ``stage`` to the norm of the same filter of ``reference`` (directions kept)."""
    with torch.no_grad():
        w, ref = stage.conv.weight, reference.conv.weight
        w.mul_((ref.flatten(1).norm(dim=1) / w.flatten(1).norm(dim=1)).view(-1, 1, 1, 1))


def _control(cfg: lcl.LCLConfig, trained: lcl.V1V2, keep_stage1: bool) -> tuple[lcl.V1V2, dict]:
    """A random control: the run's initial filters (the ones its training starts from), each rescaled to the norm
    of the trained LCL filter it would have become, so the output scale is the trained model's (the small initial
    scale would otherwise leave the outputs at the floor ``eps`` of the pooling, where every index is 0), with
    the same data-driven input centring. ``keep_stage1``: LCL's trained stage 1 and a random stage 2 (the
    random-stage-2 control); otherwise both stages random (the untrained model)."""
    trainer = lcl.Trainer(cfg)
    if keep_stage1:
        trainer.model.stage1.load_state_dict(trained.stage1.state_dict())
    else:
        _match_norms(trainer.model.stage1, trained.stage1)
    _match_norms(trainer.model.stage2, trained.stage2)
    trainer.center_inputs((2,) if keep_stage1 else (1, 2))
    silent = trainer.silent_fractions()
    return trainer.model.requires_grad_(False).eval(), silent


def _score(model: lcl.V1V2, stimuli, seed: int) -> dict:
    units = analyses.record_units(model, stimuli)
    out = {}
    for stage in ("stage1", "stage2"):
        ds = analyses.texture_modulation(units[stage], seed=seed, n_boot=200).isel(region=0)
        idx = ds.modulation.values[ds.responsive.values]
        out[stage] = {"index": idx[np.isfinite(idx)].tolist(), "frac_responsive": float(ds.frac_responsive)}
    return out


def _row(name: str, per_seed: list[dict], stage: str, seconds: list[float], silent: list[float]) -> str:
    groups = [np.asarray(r[stage]["index"]) for r in per_seed]
    mean, lo, hi = analyses.bootstrap_mean_ci(groups, n_boot=2000, seed=0)
    allv = np.concatenate(groups)
    resp = np.mean([r[stage]["frac_responsive"] for r in per_seed])
    t = f"{np.mean(seconds):6.0f}" if seconds else "     -"
    sil = f"{np.mean(silent):.2f}" if silent else "   -"
    return (f"{name:<16} {stage:<7} {mean:+.3f} [{lo:+.3f}, {hi:+.3f}]  {np.median(allv):+.3f}  "
            f"{(allv > 0).mean():.2f}   {resp:.2f}     {sil}  {t}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--sweep", default="0.5,1,2,4", help="stage-2 amplitude multipliers ('' to skip)")
    p.add_argument("--sweep-seeds", type=int, default=3)
    p.add_argument("--out", default="outputs/texture_bench")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--config", default="", help="LCL config TOML for the models (default: the demo preset)")
    p.add_argument("--quick", action="store_true", help="tiny budget and stimuli: a smoke run, not a measurement")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = lcl.LCLConfig.load(args.config) if args.config else lcl.LCLConfig.preset("demo")
    base = lcl.validate_config(base.replace(train={"progress": False}))
    stim_cfg = analyses.TextureStimuliConfig()
    if args.quick:
        base = base.replace(train={"steps": (20, 20)})
        stim_cfg = analyses.TextureStimuliConfig(families=analyses.PROTOCOL_FAMILIES[:4], n_samples=2, size=64,
                                                 n_scales=3, max_iter=3)
    t0 = time.perf_counter()
    stimuli = analyses.texture_stimuli(stim_cfg, cache_dir=out / "cache", progress=True,
                                       workers=min(2, os.cpu_count() or 1))
    print(f"stimuli: {stimuli.sizes['stimulus_id']} images of {stimuli.sizes['y']} px "
          f"({time.perf_counter() - t0:.0f} s, cached in {out / 'cache'})", flush=True)
    sweep = [float(k) for k in args.sweep.split(",") if k.strip()]
    results: dict[str, dict] = {}

    def add(name: str, seed: int, model: lcl.V1V2, seconds: float | None, silent: dict) -> None:
        entry = results.setdefault(name, {"seeds": [], "seconds": [], "silent_stage2": []})
        entry["seeds"].append(_score(model, stimuli, seed))
        if seconds is not None:
            entry["seconds"].append(seconds)
        entry["silent_stage2"].append(silent.get("stage2", float("nan")))
        s = entry["seeds"][-1]
        print(f"  {name} seed {seed}: stage1 {np.mean(s['stage1']['index']):+.3f}, stage2 "
              f"{np.mean(s['stage2']['index']):+.3f}, silent stage-2 channels {silent.get('stage2', 0):.2f}"
              + (f", trained in {seconds:.0f} s" if seconds is not None else ""), flush=True)

    for seed in range(args.seeds):
        cfg_seed = base.replace(seed=seed)
        lcl_model = None
        for name, change in TRAINED.items():
            cfg = cfg_seed.replace(**change) if change else cfg_seed
            model, seconds, silent = _train(cfg, out / "models" / f"{name}_seed{seed}")
            add(name, seed, model, seconds, silent)
            lcl_model = model if name == "lcl" else lcl_model
        add("untrained", seed, *_control_pair(cfg_seed, lcl_model, False))
        add("random_stage2", seed, *_control_pair(cfg_seed, lcl_model, True))
    for k in sweep:
        for seed in range(min(args.sweep_seeds, args.seeds) if k != 1.0 else 0):
            cfg = base.replace(seed=seed, deform={"stage_scale": (1.0, k)})
            model, seconds, silent = _train(cfg, out / "models" / f"lcl_stage2x{k:g}_seed{seed}")
            add(f"lcl stage2 x{k:g}", seed, model, seconds, silent)
    if 1.0 in sweep:
        results["lcl stage2 x1"] = results["lcl"]

    print(f"\nTexture modulation, protocol read-out ({args.seeds} seeds; interval: 95 % hierarchical bootstrap "
          "over seeds then units; silent: stage-2 channels never above threshold on 256 natural patches)")
    print(f"{'model':<16} {'stage':<7} {'mean [95 % CI]':<24} {'median':>6}  {'>0':>4}  {'resp.':>5}  "
          f"{'silent':>6} {'train s':>7}")
    names = ORDER + [f"lcl stage2 x{k:g}" for k in sweep]
    for name in names:
        if name not in results:
            continue
        r = results[name]
        for stage in ("stage1", "stage2"):
            print(_row(name, r["seeds"], stage, r["seconds"], r["silent_stage2"] if stage == "stage2" else []))
    payload = {"results": results, "stimuli": json.loads(stimuli.attrs.get("config", "{}") or "{}"),
               "lcl_config": base.to_dict(), "seeds": args.seeds, "sweep": sweep,
               "provenance": data.provenance(base.to_dict(), 0)}
    with data.atomic_write(out / "texture_bench.json") as tmp:
        tmp.write_text(json.dumps(payload, default=float))
    print(f"\nwritten: {out / 'texture_bench.json'} (total {time.perf_counter() - t0:.0f} s, "
          f"load average {os.getloadavg()[0]:.1f})")


def _control_pair(cfg: lcl.LCLConfig, trained: lcl.V1V2, keep_stage1: bool) -> tuple:
    model, silent = _control(cfg, trained, keep_stage1)
    return model, None, silent


if __name__ == "__main__":
    main()
