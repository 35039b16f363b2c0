"""Publication figures: one matplotlib style, PNG + PDF written atomically, every figure drawn from saved results."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from cycler import cycler

import data

__all__ = [
    "FIGURE_STYLE",
    "figure_style",
    "save_figure",
    "plot_texture_modulation",
    "plot_predictivity",
    "plot_texture_stimuli",
]

FIGURE_STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.5,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # editable text in the PDF
    "ps.fonttype": 42,
    "image.cmap": "gray",
    "axes.prop_cycle": cycler(
        color=["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6c4f96", "#00798c", "#8a8a8a"]),
}
REGION_COLORS = {"V1": "#1b6ca8", "V2": "#d1495b"}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Context in which matplotlib uses the workbench style (:data:`FIGURE_STYLE`).

    Yields
    ------
    None

    Examples
    --------
    >>> import matplotlib, analyses
    >>> with analyses.figure_style():
    ...     matplotlib.rcParams["pdf.fonttype"]
    42
    """
    import matplotlib

    with matplotlib.rc_context(FIGURE_STYLE):
        yield


def save_figure(fig: Any, path_stem: str | os.PathLike, *, formats: tuple[str, ...] = ("png", "pdf"),
                dpi: int = 200) -> list[Path]:
    """Write a figure as PNG and PDF, each atomically (no partial file, even on error).

    Parameters
    ----------
    fig
        A matplotlib ``Figure``.
    path_stem
        Destination without suffix (a given suffix is replaced), e.g. ``out/texture_modulation``.
    formats
        File formats to write.
    dpi
        Resolution of raster formats.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Examples
    --------
    >>> import tempfile, pathlib, analyses
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(); _ = fig.add_subplot().plot([0, 1])
    >>> [p.suffix for p in analyses.save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "line")]
    ['.png', '.pdf']
    """
    stem = Path(path_stem)
    if stem.suffix.lower() in (".png", ".pdf", ".svg", ".jpg"):
        stem = stem.with_suffix("")
    written = []
    for ext in formats:
        target = stem.with_name(f"{stem.name}.{ext}")
        with data.atomic_write(target) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi)
        written.append(target)
    return written


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
    """Figure: texture modulation per region (mean +/- s.e.m.) and the per-unit indices, from saved results.

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

    res = _results(results, "texture_modulation")
    for label, ds in res.items():
        _require(ds, ("modulation", "region_mean", "region_sem", "region_family_mean"), label, "texture_modulation")
    labels = list(res)
    with figure_style():
        fig = Figure(figsize=(max(6.5, 1.6 + 1.2 * len(labels) * 2), 3.2))
        ax_bar, ax_units = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
        seen: dict[str, int] = {}
        x0 = 0.0
        ticks, ticklabels = [], []
        for label in labels:
            ds = res[label]
            regions = [str(r) for r in ds["region"].values]
            width = 0.8 / max(len(regions), 1)
            for j, reg in enumerate(regions):
                first = reg not in seen
                k = seen.setdefault(reg, len(seen))
                x = x0 + (j - (len(regions) - 1) / 2) * width
                m = float(ds["region_mean"].sel(region=reg))
                e = float(ds["region_sem"].sel(region=reg))
                ax_bar.bar(x, m, width * 0.9, yerr=0 if np.isnan(e) else e, color=_color(reg, k),
                           label=reg if first else None, capsize=2)
                unit_region = ds["unit_region"].values.astype(str) if "unit_region" in ds.coords \
                    else np.array(["all"] * ds.sizes["neuroid"])
                vals = np.asarray(ds["modulation"].values)[unit_region == reg]
                vals = vals[np.isfinite(vals)]
                jitter = np.random.default_rng(0).uniform(-width * 0.3, width * 0.3, len(vals))
                ax_units.scatter(x + jitter, vals, s=5, alpha=0.5, color=_color(reg, k), linewidths=0)
                ax_units.plot([x - width * 0.4, x + width * 0.4], [m, m], color="black", lw=1.5)
            ticks.append(x0)
            ticklabels.append(label)
            x0 += 1.0
        for ax in (ax_bar, ax_units):
            ax.axhline(0, color="0.5", lw=0.8)
            ax.set_xticks(ticks)
            ax.set_xticklabels(ticklabels, rotation=30 if len(labels) > 3 else 0, ha="right" if len(labels) > 3
                               else "center")
        ax_bar.set_ylabel("texture modulation index\n(mean over units $\\pm$ s.e.m.)")
        ax_units.set_ylabel("unit modulation index")
        ax_bar.set_title("Texture vs. spectrally matched noise")
        ax_units.set_title("Units (line: mean)")
        ax_bar.legend(title="region")
        fig.tight_layout()
        return save_figure(fig, path_stem)


def plot_predictivity(results: Any, path_stem: str | os.PathLike) -> list[Path]:
    """Figure: ceiling-normalized neural predictivity per region, and raw r against the ceiling, from saved results.

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
    ValueError
        If the results lack the variables of :func:`analyses.neural_predictivity`.

    Examples
    --------
    >>> import numpy as np, xarray as xr, tempfile, pathlib, analyses
    >>> r = xr.Dataset({"raw": ("region", [0.4, 0.3]), "raw_sem": ("region", [0.02, 0.03]),
    ...                 "ceiling": ("region", [0.8, 0.75]), "normalized": ("region", [0.5, 0.4])},
    ...                coords={"region": ["V1", "V2"]})
    >>> files = analyses.plot_predictivity({"model": r}, pathlib.Path(tempfile.mkdtemp()) / "pred")
    >>> files[0].name
    'pred.png'
    """
    from matplotlib.figure import Figure

    res = _results(results, "neural_predictivity")
    for label, ds in res.items():
        _require(ds, ("raw", "raw_sem", "ceiling", "normalized"), label, "neural_predictivity")
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
                norm = float(ds["normalized"].sel(region=reg))
                err = sem / ceil if np.isfinite(sem) and ceil > 0 else 0.0
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
        ax_norm.set_ylabel("predictivity / ceiling")
        ax_norm.set_title("Neural predictivity (normalized)")
        ax_raw.set_ylabel("held-out Pearson r\n(median over neuroids)")
        ax_raw.set_title("Raw predictivity and ceiling")
        ax_norm.legend(title="region")
        ax_raw.legend()
        fig.tight_layout()
        return save_figure(fig, path_stem)


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
    ValueError
        If the stimulus set lacks ``texture_family`` / ``texture_type`` / ``sample``.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, data, analyses
    >>> s = data.stimulus_set(np.random.default_rng(0).random((2, 16, 16)), stimulus_id=["t", "n"],
    ...                       texture_family=["a", "a"], texture_type=["texture", "noise"], sample=[0, 0])
    >>> analyses.plot_texture_stimuli(s, pathlib.Path(tempfile.mkdtemp()) / "stim")[1].suffix
    '.pdf'
    """
    from matplotlib.figure import Figure

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
        return save_figure(fig, path_stem)
