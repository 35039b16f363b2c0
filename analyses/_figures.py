"""Publication figures: one matplotlib style, PNG + PDF written atomically, every figure drawn from saved results."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import data
from data import FIGURE_STYLE, figure_style, save_figure
from data._checks import check_int, check_path

__all__ = [
    "plot_texture_modulation",
    "plot_predictivity",
    "plot_texture_stimuli",
]

REGION_COLORS = {"V1": "#1b6ca8", "V2": "#d1495b"}


def _results(results: Any, what: str) -> dict[str, xr.Dataset]:
    """Normalize ``Dataset | path | {label: Dataset | path}`` to ``{label: Dataset}``."""
    def one(r: Any) -> xr.Dataset:
        if isinstance(r, (str, os.PathLike)):
            r = data.load(r)
        if not isinstance(r, xr.Dataset):
            raise TypeError(f"expected {what} results as an xarray.Dataset or a file path, got {type(r).__name__}")
        return r
    if isinstance(results, Mapping) and not isinstance(results, xr.Dataset):  # a Dataset is a Mapping too
        if not results:
            raise ValueError(f"no {what} results to plot")
        return {str(k): one(v) for k, v in results.items()}
    r = one(results)
    return {str(r.attrs.get("label", "")): r}


def _require(ds: xr.Dataset, names: tuple[str, ...], label: str, what: str) -> None:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise ValueError(f"{what} results {label!r} lack {missing}; were they made by analyses.{what}?")


def _color(region: str, k: int) -> str:
    palette = FIGURE_STYLE["axes.prop_cycle"].by_key()["color"]
    return REGION_COLORS.get(region, palette[(k + 2) % len(palette)])


def plot_texture_modulation(results: Any, path_stem: str | os.PathLike) -> list[Path]:
    """Figure at journal single-column width (3.5 in): texture modulation per representation and region.

    One row per (label, region): the mean index of the responsive units with its 95 % bootstrap interval, the
    median (open mark), and at the right the number of responsive units out of all units. Drawn from saved
    results (re-plot without recomputing).

    Parameters
    ----------
    results
        The Dataset of :func:`analyses.texture_modulation`, its file, or ``{label: Dataset or file}`` for several
        models / stages / recordings (one group of bars per label).
    path_stem
        Output path without suffix; PNG and PDF are written.

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    TypeError
        If ``results`` is not a Dataset, a path or a mapping of them, or ``path_stem`` is not a path.
    ValueError
        If the results lack the variables of :func:`analyses.texture_modulation`.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, data, analyses
    >>> a = data.assembly(np.array([[30.0, 5.0], [10.0, 5.0]]), stimulus_id=["t", "n"],
    ...                   neuroid_id=["u0", "u1"], texture_family=["brick", "brick"],
    ...                   texture_type=["texture", "noise"], region=["V2", "V1"])
    >>> r = analyses.texture_modulation(a)
    >>> files = analyses.plot_texture_modulation({"toy": r}, pathlib.Path(tempfile.mkdtemp()) / "mod")
    >>> [f.name for f in files]
    ['mod.png', 'mod.pdf']
    """
    from matplotlib.figure import Figure

    check_path("path_stem", path_stem)
    res = _results(results, "texture_modulation")
    for label, ds in res.items():
        _require(ds, ("modulation", "region_mean", "region_family_mean"), label, "texture_modulation")
    rows = []
    for label, ds in res.items():
        for reg in (str(r) for r in ds["region"].values):
            r = ds.sel(region=reg)
            def get(k: str, r: xr.Dataset = r) -> float:
                return float(r[k]) if k in r else float("nan")

            name = label if len(ds["region"]) == 1 or reg == label else f"{label} {reg}"
            rows.append((name, reg, get("region_mean"), get("region_ci_low"), get("region_ci_high"),
                         get("region_median"), int(get("n_responsive")) if "n_responsive" in r else None,
                         int(get("n_units")) if "n_units" in r else None))
    seen: dict[str, int] = {}
    with figure_style():
        fig = Figure(figsize=(3.5, 0.75 + 0.19 * len(rows)))
        ax = fig.subplots()
        y = np.arange(len(rows))[::-1]
        for yi, (_name, reg, m, lo, hi, med, n_resp, n_all) in zip(y, rows):
            k = seen.setdefault(reg, len(seen))
            c = _color(reg, k)
            if np.isfinite(lo):
                ax.plot([lo, hi], [yi, yi], color=c, lw=1.6, solid_capstyle="butt")
            ax.plot(m, yi, "o", color=c, ms=4)
            if np.isfinite(med):
                ax.plot(med, yi, "|", color="black", ms=6, mew=0.9)
            if n_resp is not None:
                ax.annotate(f"{n_resp}/{n_all}", (1.0, yi), xycoords=("axes fraction", "data"), xytext=(3, 0),
                            textcoords="offset points", va="center", fontsize=6, color="0.35")
        ax.axvline(0, color="0.6", lw=0.7)
        ax.set_yticks(y, [r[0] for r in rows], fontsize=7)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_xlabel("texture modulation index (texture vs. noise)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title("mean, 95 % CI, median ($|$)\nright: responsive / all units", fontsize=7, loc="left")
        fig.tight_layout(pad=0.4)
        return save_figure(fig, path_stem, width="single")


def plot_predictivity(results: Any, path_stem: str | os.PathLike) -> list[Path]:
    """Figure: Brain-Score's score (r² / ceiling) per region, and raw r against the ceiling, from saved results.

    Parameters
    ----------
    results
        The Dataset of :func:`analyses.neural_predictivity`, its file, or ``{label: Dataset or file}`` for several
        models / stages.
    path_stem
        Output path without suffix; PNG and PDF are written.

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    TypeError
        If ``results`` is not a Dataset, a path or a mapping of them, or ``path_stem`` is not a path.
    ValueError
        If the results lack the variables of :func:`analyses.neural_predictivity`.

    Examples
    --------
    >>> import numpy as np, xarray as xr, tempfile, pathlib, analyses
    >>> r = xr.Dataset({"raw": ("region", [0.4, 0.3]), "raw_sem": ("region", [0.02, 0.03]),
    ...                 "ceiling": ("region", [0.8, 0.75]), "score": ("region", [0.2, 0.12])},
    ...                coords={"region": ["V1", "V2"]})
    >>> files = analyses.plot_predictivity({"model": r}, pathlib.Path(tempfile.mkdtemp()) / "pred")
    >>> files[0].name
    'pred.png'
    """
    from matplotlib.figure import Figure

    check_path("path_stem", path_stem)
    res = _results(results, "neural_predictivity")
    for label, ds in res.items():
        _require(ds, ("raw", "raw_sem", "ceiling", "score"), label, "neural_predictivity")
    labels = list(res)
    with figure_style():
        fig = Figure(figsize=(max(6.5, 1.6 + 1.2 * len(labels) * 2), 3.2))
        ax_norm, ax_raw = fig.subplots(1, 2)
        seen: dict[str, int] = {}
        ticks = []
        for i, label in enumerate(labels):
            ds = res[label]
            regions = [str(r) for r in ds["region"].values]
            width = 0.8 / max(len(regions), 1)
            for j, reg in enumerate(regions):
                first = reg not in seen
                k = seen.setdefault(reg, len(seen))
                x = i + (j - (len(regions) - 1) / 2) * width
                raw = float(ds["raw"].sel(region=reg))
                sem = float(ds["raw_sem"].sel(region=reg))
                ceil = float(ds["ceiling"].sel(region=reg))
                norm = float(ds["score"].sel(region=reg))
                # error propagated from the raw r's: d(r^2 / c) = 2 r dr / c
                err = 2 * abs(raw) * sem / ceil if np.isfinite(sem) and ceil > 0 else 0.0
                ax_norm.bar(x, norm, width * 0.9, yerr=err, color=_color(reg, k), capsize=2,
                            label=reg if first else None)
                ax_raw.bar(x, raw, width * 0.9, yerr=0 if not np.isfinite(sem) else sem, color=_color(reg, k),
                           capsize=2)
                ax_raw.plot([x - width * 0.45, x + width * 0.45], [ceil, ceil], color="black", lw=1.5,
                            label="ceiling" if i == 0 and j == 0 else None)
            ticks.append(i)
        for ax in (ax_norm, ax_raw):
            ax.axhline(0, color="0.5", lw=0.8)
            ax.set_xticks(ticks)
            ax.set_xticklabels(labels, rotation=30 if len(labels) > 3 else 0,
                               ha="right" if len(labels) > 3 else "center")
        ax_norm.axhline(1, color="0.3", lw=0.8, ls="--")
        ax_norm.set_ylabel("score = r² / ceiling")
        ax_norm.set_title("Neural predictivity (Brain-Score score)")
        ax_raw.set_ylabel("held-out Pearson r\n(median over neuroids)")
        ax_raw.set_title("Raw predictivity and ceiling")
        ax_norm.legend(title="region")
        ax_raw.legend()
        fig.tight_layout()
        return save_figure(fig, path_stem, width="double")


def plot_texture_stimuli(stimuli: xr.Dataset | str | os.PathLike, path_stem: str | os.PathLike, *,
                         n_samples: int = 2, max_families: int | None = None) -> list[Path]:
    """Figure: per texture family, the source image, texture samples and their spectrally matched noise.

    Parameters
    ----------
    stimuli
        A stimulus set from :func:`analyses.texture_stimuli` (or its file).
    path_stem
        Output path without suffix; PNG and PDF are written.
    n_samples
        Samples shown per family (textures and their noise).
    max_families
        Show at most this many families (default: all).

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    TypeError
        For a ``path_stem`` that is not a path, non-integer ``n_samples`` / ``max_families``.
    ValueError
        If the stimulus set lacks ``texture_family`` / ``texture_type`` / ``sample``, or ``n_samples`` /
        ``max_families`` is below 1.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, data, analyses
    >>> s = data.stimulus_set(np.random.default_rng(0).random((2, 16, 16)), stimulus_id=["t", "n"],
    ...                       texture_family=["a", "a"], texture_type=["texture", "noise"], sample=[0, 0])
    >>> analyses.plot_texture_stimuli(s, pathlib.Path(tempfile.mkdtemp()) / "stim")[1].suffix
    '.pdf'
    """
    from matplotlib.figure import Figure

    check_path("path_stem", path_stem)
    n_samples = check_int("n_samples", n_samples, low=1)
    max_families = check_int("max_families", max_families, low=1, none=True)
    if isinstance(stimuli, (str, os.PathLike)):
        stimuli = data.load(stimuli)
    data.validate_stimuli(stimuli)
    for coord in ("texture_family", "texture_type", "sample"):
        if coord not in stimuli.coords:
            raise ValueError(f"stimulus set lacks the {coord!r} coordinate (made by analyses.texture_stimuli?)")
    fams = list(dict.fromkeys(np.asarray(stimuli["texture_family"].values).astype(str)))
    if max_families is not None:
        fams = fams[:max_families]
    has_source = "source_image" in stimuli and "source_name" in stimuli
    sources = [str(n) for n in stimuli["source_name"].values] if has_source else []
    samples = sorted(set(np.asarray(stimuli["sample"].values).tolist()))[:n_samples]
    n_cols = (1 if has_source else 0) + 2 * len(samples)
    fam_of = np.asarray(stimuli["texture_family"].values).astype(str)
    kind_of = np.asarray(stimuli["texture_type"].values).astype(str)
    sample_of = np.asarray(stimuli["sample"].values)
    imgs = np.asarray(stimuli["image"].values)
    with figure_style():
        fig = Figure(figsize=(1.1 * n_cols + 0.8, 1.1 * len(fams) + 0.4))
        axes = np.atleast_2d(fig.subplots(len(fams), n_cols, squeeze=False))
        for i, fam in enumerate(fams):
            col = 0
            if has_source:
                if fam in sources:
                    axes[i, 0].imshow(stimuli["source_image"].values[sources.index(fam)], vmin=0, vmax=1)
                col = 1
            for kind in ("texture", "noise"):
                for s in samples:
                    rows = np.flatnonzero((fam_of == fam) & (kind_of == kind) & (sample_of == s))
                    if len(rows):
                        axes[i, col].imshow(imgs[rows[0]], vmin=0, vmax=1)
                    if i == 0:
                        axes[i, col].set_title(f"{kind} {s}", fontsize=8)
                    col += 1
            axes[i, 0].set_ylabel(fam, rotation=0, ha="right", va="center", fontsize=8)
        if has_source:
            axes[0, 0].set_title("source", fontsize=8)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ("left", "bottom"):
                ax.spines[side].set_visible(False)
        fig.tight_layout()
        return save_figure(fig, path_stem, width="double")
