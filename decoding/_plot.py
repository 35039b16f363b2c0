"""Figures from saved results: originals and their linear, point-wise and enhanced reconstructions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

import data
from data._checks import check_int, check_path

from . import metrics

__all__ = ["plot_reconstructions"]

_LABELS = {"linear": "linear", "pointwise": "point-wise", "enhanced": "enhanced (CNN)"}


def plot_reconstructions(results: xr.Dataset | str | Path, path: str | Path, *, dpi: int = 150) -> list[Path]:
    """Figure: a row of original test images, then one row per method, each panel with its PSNR / SSIM.

    Made from saved results only (no recomputation); written as PNG and PDF.

    Parameters
    ----------
    results
        Output of :func:`decoding.run_study`, or the path of its ``results.nc``.
    path
        Output path; its suffix is replaced by ``.png`` and ``.pdf``.
    dpi
        Resolution of the PNG.

    The figure is two journal columns wide (:func:`data.save_figure`), in the workbench style
    (:func:`data.figure_style`); each file is written atomically.

    Returns
    -------
    list of pathlib.Path
        The PNG and PDF files.

    Raises
    ------
    TypeError
        If ``results`` is neither a Dataset nor a path, ``path`` not a path, ``dpi`` not an integer.
    ValueError
        If ``results`` lacks the stored examples, or ``dpi`` is outside [1, 2400].

    Examples
    --------
    >>> import decoding
    >>> decoding.plot_reconstructions("out/results.nc", "out/reconstructions")  # doctest: +SKIP
    [PosixPath('out/reconstructions.png'), PosixPath('out/reconstructions.pdf')]
    """
    from matplotlib.figure import Figure

    from ._study import load_results

    path = check_path("path", path)
    dpi = check_int("dpi", dpi, low=1, high=2400)
    if not isinstance(results, xr.Dataset):
        results = load_results(check_path("results", results))
    for var in ("original", "reconstruction"):
        if var not in results:
            raise ValueError(f"results have no {var!r} variable (were they written by decoding.run_study?)")
    with data.figure_style():
        orig = results["original"].values
        methods = [str(m) for m in results["decoder"].values]
        n_ex = orig.shape[0]
        rows = 1 + len(methods)
        data_range = float(results.attrs.get("data_range", 1.0))
        fig = Figure(figsize=(1.6 * n_ex + 0.9, 1.75 * rows + 0.5), layout="constrained")
        axes = np.atleast_2d(fig.subplots(rows, n_ex, squeeze=False))
        sources = results["example_source"].values if "example_source" in results.coords else [""] * n_ex
        for j in range(n_ex):
            ax = axes[0, j]
            ax.imshow(orig[j], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(str(sources[j]), fontsize=7)
        for i, m in enumerate(methods, start=1):
            rec = results["reconstruction"].sel(decoder=m).values
            for j in range(n_ex):
                ax = axes[i, j]
                ax.imshow(np.clip(rec[j], 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                p = metrics.psnr(orig[j], rec[j], data_range=data_range)
                s = metrics.ssim(orig[j], rec[j], data_range=data_range)
                ax.set_title(f"{p:.1f} dB / {s:.3f}", fontsize=7)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, 0].set_ylabel("original", fontsize=8)
        for i, m in enumerate(methods, start=1):
            axes[i, 0].set_ylabel(_LABELS.get(m, m), fontsize=8)
        summary = json.loads(results.attrs["summary"]) if "summary" in results.attrs else {
            m: {"psnr": float(results.psnr.sel(decoder=m).mean()), "ssim": float(results.ssim.sel(decoder=m).mean())}
            for m in methods}
        n = results.sizes.get("stimulus_id", 0)
        text = "\n".join(f"{_LABELS.get(m, m)} {summary[m]['psnr']:.2f} dB / {summary[m]['ssim']:.3f}"
                         for m in methods if m in summary)
        fig.suptitle(f"Held-out photographs, mean over {n} crops (PSNR / SSIM)\n{text}", fontsize=8)
        return data.save_figure(fig, path, width="double", dpi=dpi)
