"""Benchmark of issue 5: decoding natural images from simulated retinal spikes.

Prints (1) the time to simulate 5398 cells x 10,000 images of 128 x 128 (goal: under 10 s on 2 cores) and
(2) on crops of held-out photographs: PSNR and SSIM of the linear, point-wise and enhanced reconstructions
(goal: enhanced at least +2 dB PSNR and +0.05 SSIM over linear), with an honest verdict on each goal.
On request (``--part ceiling``) it also prints a diagnostic: the gain of the same enhancer trained on crops of the
held-out photographs themselves, an upper bound on what more photographs of their kind could bring.

Usage::

    python benchmarks/decoding_bench.py                       # both parts, bench preset, out/decoding_bench
    python benchmarks/decoding_bench.py --part simulate       # timing only
    python benchmarks/decoding_bench.py --part study --preset demo --out out/demo
    python benchmarks/decoding_bench.py --part study --resume # continue an interrupted enhancer training
    python benchmarks/decoding_bench.py --part ceiling        # diagnostic: enhancer trained on the test photos

Timings depend on the machine and on what else runs on it; the script prints the thread count and load.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _machine import machine_line

import data
import decoding


def bench_simulation(n_images: int, repeats: int) -> dict[str, float]:
    retina = decoding.Retina(decoding.RetinaConfig())
    photos = data.natural_images(size=256)
    images = data.sample_patches(photos, n_images, 128, seed=0)["image"].values  # float32 (n, 128, 128)
    retina.simulate(images[:256], seed=0)  # warm-up (allocations, thread pools)
    best_total = best_rates = np.inf
    for r in range(repeats):
        t0 = time.perf_counter()
        counts = retina.simulate(images, seed=r, batch_size=1024)
        best_total = min(best_total, time.perf_counter() - t0)
        t0 = time.perf_counter()
        retina.rates(images, batch_size=1024)
        best_rates = min(best_rates, time.perf_counter() - t0)
    return {"cells": retina.n_cells, "images": n_images, "seconds": best_total, "seconds_rates_only": best_rates,
            "mean_count": float(counts.mean()), "fraction_zero": float((counts.values == 0).mean())}


def bench_ceiling(preset: str, epochs: int, device: str) -> dict[str, dict[str, float]]:
    """A diagnostic, not a result: the preset's enhancer trained on fresh crops (and fresh spikes) of the HELD-OUT
    photographs themselves, then scored on the study's test crops (same crops, spikes and linear decoder as the
    study). The crops overlap the test crops, so this bounds from above what more photographs of the same kind
    could give this network and training budget on these test photographs."""
    cfg = decoding.StudyConfig.preset(preset, **({"train": {"epochs": epochs}} if epochs else {}))
    size, seed = cfg.retina.image_size, cfg.seed
    sets = decoding.make_datasets(cfg.data, size, seed=seed)
    retina = decoding.Retina(cfg.retina).to(device)
    counts = {name: retina.simulate(sets[name], seed=data.derive_seed(seed, "retina", name), batch_size=cfg.batch_size,
                                    progress=False)
              for name in ("decoder", "test")}  # the study's seeds for these two sets
    dec = decoding.LinearDecoder(cfg.decoder.alpha, chunk_size=cfg.decoder.chunk_size, dtype=cfg.decoder.dtype,
                                 device=device, progress=False).fit(counts["decoder"], sets["decoder"])
    test_photos = decoding.study_photographs(cfg.data, seed=seed)[1]
    crops = data.sample_patches(test_photos, cfg.data.n_enhancer, size, seed=data.derive_seed(seed, "crops", "ceiling"))
    lin_train = dec.predict(retina.simulate(crops, seed=data.derive_seed(seed, "retina", "ceiling"),
                                            batch_size=cfg.batch_size, progress=False))
    model = decoding.Enhancer(cfg.enhancer, seed=data.derive_seed(seed, "enhancer", "weights"))
    decoding.train_enhancer(model, lin_train, crops["image"].values, cfg.train,
                            seed=data.derive_seed(seed, "enhancer", "batches"), device=device)
    lin = dec.predict(counts["test"], batch_size=cfg.batch_size)
    scores = decoding.evaluate(sets["test"], {"linear": lin, "enhanced": model.enhance(lin, device=device)})
    gain = {k: (scores[k].sel(decoder="enhanced") - scores[k].sel(decoder="linear")).values for k in ("psnr", "ssim")}
    source = sets["test"]["source"].values.astype(str)
    groups = {"all": np.ones(len(source), bool)} | {name: source == name for name in sorted(set(source.tolist()))}
    return {name: {k: float(gain[k][m].mean()) for k in gain} for name, m in groups.items()}


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["all", "simulate", "study", "ceiling"], default="all",
                   help="all: simulate + study; ceiling (a diagnostic, run only when asked): the enhancer trained on "
                        "crops of the held-out photographs themselves")
    p.add_argument("--ceiling-epochs", type=int, default=0, help="enhancer epochs for --part ceiling (0: the preset's)")
    p.add_argument("--preset", default="bench", choices=decoding.StudyConfig.presets())
    p.add_argument("--out", type=Path, default=Path("out/decoding_bench"))
    p.add_argument("--resume", action="store_true", help="resume the enhancer training from OUT/enhancer.pt")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the target machine)")
    p.add_argument("--n-images", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{machine_line()} (other work on the machine slows every timing below)")
    if args.part in ("all", "simulate"):
        s = bench_simulation(args.n_images, args.repeats)
        print(f"\n[simulate] {s['cells']} cells x {s['images']} images of 128x128: {s['seconds']:.2f} s "
              f"(best of {args.repeats}; rates alone {s['seconds_rates_only']:.2f} s, Poisson noise the rest); "
              f"mean count {s['mean_count']:.2f} per cell per image, {100 * s['fraction_zero']:.1f}% zeros")
        print(f"[simulate] goal < 10 s on 2 cores: {verdict(s['seconds'] < 10)}")
    if args.part in ("all", "study"):
        cfg = decoding.StudyConfig.preset(args.preset)
        print(f"\n[study] preset {args.preset!r}: {cfg.retina.n_cells} cells on {cfg.retina.image_size}px crops; "
              f"{cfg.data.n_decoder} decoder / {cfg.data.n_enhancer} enhancer / {cfg.data.n_test} test crops; "
              f"enhancer width {cfg.enhancer.width}, {cfg.train.epochs} epochs on {cfg.train.patch_size}px patches")
        t0 = time.perf_counter()
        res = decoding.run_study(cfg, out_dir=args.out, resume=args.resume, device=args.device)
        wall = time.perf_counter() - t0
        figs = decoding.plot_reconstructions(res, args.out / "reconstructions")
        print(f"[study] held-out photographs: {', '.join(json.loads(res.attrs['test_sources']))}")
        print(f"[study] trained on: {', '.join(json.loads(res.attrs['train_sources']))}")
        print(decoding.summary_table(res))
        lin, enh = res.sel(decoder="linear"), res.sel(decoder="enhanced")
        pw = res.sel(decoder="pointwise")
        d_psnr = float((enh.psnr - lin.psnr).mean())
        d_ssim = float((enh.ssim - lin.ssim).mean())
        print(f"[study] point-wise - linear: {float((pw.psnr - lin.psnr).mean()):+.2f} dB PSNR, "
              f"{float((pw.ssim - lin.ssim).mean()):+.4f} SSIM")
        print(f"[study] enhanced - linear:   {d_psnr:+.2f} dB PSNR (goal +2 dB: {verdict(d_psnr >= 2)}), "
              f"{d_ssim:+.4f} SSIM (goal +0.05: {verdict(d_ssim >= 0.05)})")
        print(f"[study] wall {wall:.0f} s; steps (wall): {res.attrs['seconds']}")
        print(f"[study] steps (CPU seconds over all threads): {res.attrs['cpu_seconds']}")
        print(f"[study] wrote {args.out / 'results.nc'}, {', '.join(map(str, figs))}")
    if args.part == "ceiling":
        t0 = time.perf_counter()
        c = bench_ceiling(args.preset, args.ceiling_epochs, args.device)
        epochs = args.ceiling_epochs or decoding.StudyConfig.preset(args.preset).train.epochs
        print(f"\n[ceiling] preset {args.preset!r} enhancer, {epochs} epochs, trained on crops of the HELD-OUT "
              f"photographs (overlapping the test crops; new spikes), scored on the study's test crops:")
        for name, g in c.items():
            print(f"[ceiling]   {name:20s} enhanced - linear {g['psnr']:+.2f} dB PSNR, {g['ssim']:+.4f} SSIM")
        print(f"[ceiling] an upper bound on what more photographs like these give this network and budget "
              f"(compare the study's held-out gain); wall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
