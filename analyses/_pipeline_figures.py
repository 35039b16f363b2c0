"""The main job's figures, re-drawn from the results its manifest names (no training, synthesis or fitting)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

import data
import decoding
import lcl
from data._checks import check_path

from ._figures import plot_predictivity, plot_texture_modulation, plot_texture_stimuli
from ._manifest import Manifest
from ._represent import PIXELS

__all__ = ["plot"]


def _plot_geometry(files: Mapping[str, Path], stem: Path) -> list[Path]:
    from matplotlib.figure import Figure

    labels = list(files)
    rows = [data.load(files[k]) for k in labels]
    metrics = [("capacity", "capacity $\\alpha_M$"), ("radius", "radius $R_M$"), ("dimension", "dimension $D_M$"),
               ("center_alignment", "center alignment"), ("accuracy", "decodability")]
    metrics = [(m, t) for m, t in metrics if all(m in r for r in rows)]
    with data.figure_style():
        fig = Figure(figsize=(7.0, 0.2 * len(labels) + 1.3))
        axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)
        y = np.arange(len(labels))
        for ax, (m, title) in zip(axes[0], metrics):
            vals = [float(r[m]) for r in rows]
            ax.barh(y, vals, color=["0.55" if "neural" in k or k == PIXELS else "C0" for k in labels])
            ax.set_title(title)
            ax.set_yticks(y, labels)
            ax.invert_yaxis()
        fig.suptitle("Texture-family manifolds (points: texture samples)")
        return data.save_figure(fig, stem, width="double")


def _plot_training(logs: Mapping[str, Path], stem: Path) -> list[Path]:
    from matplotlib.figure import Figure

    if not logs:
        return []
    with data.figure_style():
        fig = Figure(figsize=(3.5, 2.4))
        ax = fig.add_subplot()
        for name, path in logs.items():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            rows = [r for r in rows if "loss" in r]
            if not rows:
                continue
            key = "phase" if "phase" in rows[0] else None
            phases = list(dict.fromkeys(r.get(key, "") for r in rows)) if key else [""]
            offset = 0
            for ph in phases:
                part = [r["loss"] for r in rows if (r.get(key, "") if key else "") == ph]
                ax.plot(np.arange(offset, offset + len(part)), part, lw=1, label=f"{name} {ph}".strip(),
                        marker="o" if len(part) == 1 else None, ms=3)  # a lone logged step is a point
                offset += len(part)
        ax.set_xlabel("logged step")
        ax.set_ylabel("loss")
        ax.legend(fontsize=6)
        return data.save_figure(fig, stem, width="single")


def plot(results_dir: str | os.PathLike) -> list[Path]:
    """Re-draw every figure from the saved results in ``results_dir``: no training, synthesis or fitting.

    The results are found by name in the run's ``manifest.json`` (see ``analyses._manifest``); the figures are
    added to it (``figure:<stem>`` -> the PNG; the PDF lies next to it).

    Parameters
    ----------
    results_dir
        A folder written by :func:`run`.

    Returns
    -------
    list of pathlib.Path
        The figure files written (PNG and PDF) under ``results_dir/figures``.

    Raises
    ------
    TypeError
        For a ``results_dir`` that is not a path (str or ``os.PathLike``).
    ValueError
        If the folder holds no results of :func:`run` (no or a damaged ``manifest.json``).

    Examples
    --------
    >>> import analyses
    >>> analyses.plot("outputs/demo")  # doctest: +SKIP
    """
    out = check_path("results_dir", results_dir)
    manifest = Manifest.load(out)
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    written: list[Path] = []
    written += plot_texture_stimuli(manifest.path("stimuli"), figs / "texture_stimuli")
    for kind, draw, stem in (("modulation", plot_texture_modulation, "texture_modulation"),
                             ("predictivity", plot_predictivity, "predictivity")):
        files = manifest.of_kind(kind)
        if files:
            written += draw({k: str(v) for k, v in files.items()}, figs / stem)
    geometry_files = manifest.of_kind("geometry")
    if geometry_files:
        written += _plot_geometry(geometry_files, figs / "geometry")
    models = manifest.of_kind("model")
    for name, folder in models.items():
        written += lcl.plot_filters(lcl.load_model(folder), figs / f"filters_{name}",
                                    title=f"stage-1 filters: {name}")
    written += _plot_training({n: f / "log.jsonl" for n, f in models.items() if (f / "log.jsonl").is_file()},
                              figs / "training_loss")
    if manifest.get("v2net") is not None:
        written += lcl.plot_corruptions(manifest.path("v2net"), figs / "v2net_corruptions")
    if manifest.get("decoding") is not None:
        written += decoding.plot_reconstructions(manifest.path("decoding"), figs / "decoding_reconstructions")
    manifest.add({f"figure:{p.stem}": p for p in written if p.suffix == ".png"}).save()
    return written
