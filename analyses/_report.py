"""The main job's report: ``report.md`` with the settings, summary tables and figures of the results its manifest
names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

import data
import decoding
from data._checks import check_path

from ._manifest import Manifest

__all__ = ["write_report"]


def _table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _modulation(manifest: Manifest, cfg: dict) -> list[str]:
    rows = []
    for label, path in manifest.of_kind("modulation").items():
        ds = data.load(path)
        for region in ds["region"].values.tolist():
            r = ds.sel(region=region)
            ci = (f" [{float(r['region_ci_low']):+.3f}, {float(r['region_ci_high']):+.3f}]"
                  if "region_ci_low" in r and np.isfinite(float(r["region_ci_low"])) else "")
            rows.append([label, str(region), f"{float(r['region_mean']):+.3f}{ci}",
                         f"{float(r['region_median']):+.3f}",
                         f"{float(r['region_frac_positive']):.2f}" if "region_frac_positive" in r else "-",
                         f"{int(r['n_responsive'])}/{int(r['n_units'])}" if "n_units" in r else "-"])
    if not rows:
        return []
    m = cfg["config"].get("modulation", {})
    return ["## Texture modulation (Freeman et al. 2013)", "",
            f"Index (R_texture - R_noise) / (R_texture + R_noise) per unit, averaged over families. Model units: "
            f"one per channel, read-out `{m.get('readout', 'center')}` (`center`: the unit whose receptive "
            "field is centred on the stimulus). Only responsive units enter (peak at least "
            f"{m.get('min_peak', 0.01)} of the region's largest and responses varying by at least "
            f"{m.get('min_range', 0.01)} of the unit's peak); interval: 95 % bootstrap over units.", "",
            _table(rows, ["representation", "region", "mean [95 % CI]", "median", "fraction > 0",
                          "responsive / units"]), ""]


def _predictivity(manifest: Manifest) -> list[str]:
    rows = []
    for label, path in manifest.of_kind("predictivity").items():
        ds = data.load(path)
        for region in ds["region"].values.tolist():
            r = ds.sel(region=region)
            rows.append([label, str(region), f"{float(r['raw']):.3f} ± {float(r['raw_sem']):.3f}",
                         f"{float(r['ceiling']):.3f}", f"{float(r['score']):.3f}", f"{float(r['score_legacy']):.3f}"])
    if not rows:
        return []
    return ["## Neural predictivity (PLS, Brain-Score convention)", "",
            "raw r: held-out Pearson r, median over neuroids, mean ± s.e. over the stratified splits; "
            "ceiling: split-half consistency over repetitions (Spearman-Brown); score = r² / ceiling "
            "(Brain-Score's score since January 2026); legacy = (r / ceiling)² (Brain-Score up to 2.3.12).",
            "", _table(rows, ["model", "region", "raw r", "ceiling", "score = r²/ceiling", "legacy = (r/ceiling)²"]),
            ""]


def _geometry(manifest: Manifest) -> list[str]:
    rows = []
    for label, path in manifest.of_kind("geometry").items():
        ds = data.load(path)
        rows.append([label] + [f"{float(ds[m]):.3f}" if m in ds else "-"
                               for m in ("capacity", "radius", "dimension", "accuracy")])
    if not rows:
        return []
    return ["## Geometry of texture-family manifolds", "",
            _table(rows, ["representation", "capacity", "radius", "dimension", "decodability"]), ""]


def write_report(results_dir: str | os.PathLike) -> Path:
    """Write ``report.md``: settings, summary tables and every figure of the results folder.

    The results and figures are found by name in the run's ``manifest.json`` (see ``analyses._manifest``).

    Parameters
    ----------
    results_dir
        A folder written by :func:`run` (figures already drawn by :func:`plot`).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    TypeError
        For a ``results_dir`` that is not a path (str or ``os.PathLike``).
    ValueError
        If the folder holds no results of :func:`run` (no ``config.json`` or no ``manifest.json``).

    Examples
    --------
    >>> import analyses
    >>> analyses.write_report("outputs/demo")  # doctest: +SKIP
    """
    out = check_path("results_dir", results_dir)
    if not (out / "config.json").is_file():
        raise ValueError(f"{out} holds no results of analyses.run (missing config.json)")
    manifest = Manifest.load(out)
    cfg = json.loads((out / "config.json").read_text())
    neural = cfg["config"]["neural"]
    parts = [
        "# lcl-workbench report",
        "",
        f"lcl-workbench {cfg.get('lcl_workbench_version')} (git {cfg.get('git_commit')}), created "
        f"{cfg.get('created')}. Root seed {cfg['config'].get('seed')}, device `{cfg['config'].get('device')}`. "
        f"Neural data: **{neural['source']}**"
        + (" (a simulated V1/V2 recording, not primate data)" if neural["source"] == "simulated"
           else f" ({neural['path']})") + ". Full settings: `config.json`; results by name: `manifest.json`.",
        "",
    ]
    parts += _modulation(manifest, cfg) + _predictivity(manifest) + _geometry(manifest)
    if manifest.get("decoding") is not None:
        parts += ["## Decoding images from retinal spikes (held-out photographs)", "", "```",
                  decoding.summary_table(decoding.load_results(manifest.path("decoding"))), "```", ""]
    if manifest.get("timings") is not None:
        t = json.loads(manifest.path("timings").read_text())
        parts += ["## Timings", "", _table([[k, f"{v:.1f} s"] for k, v in t.items()], ["step", "time"]), ""]
    parts += ["## Figures", ""]
    for label, png in sorted(manifest.of_kind("figure").items()):
        parts += [f"### {label.replace('_', ' ')}", "", f"![{label}](figures/{png.name})",
                  f"([PDF](figures/{png.stem}.pdf))", ""]
    path = out / "report.md"
    with data.atomic_write(path) as tmp:
        tmp.write_text("\n".join(parts))
    return path
