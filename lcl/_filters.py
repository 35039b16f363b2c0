"""Filter statistics (orientation selectivity from Fourier energy, spatial spread) and the filter figure."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

import data
from data._checks import check_array, check_int, check_path, check_str

__all__ = ["orientation_selectivity", "spatial_spread", "plot_filters"]

#: Largest zero-padded FFT side :func:`orientation_selectivity` accepts.
MAX_FFT_SIZE = 4096


def _weights(filters: torch.Tensor | np.ndarray) -> torch.Tensor:
    w = torch.as_tensor(check_array("filters", filters), dtype=torch.float64)
    if w.ndim == 3:
        w = w[:, None]
    if w.ndim != 4:
        raise ValueError(f"filters must be (n, y, x) or (n, in_channels, y, x), got shape {tuple(w.shape)}")
    return w


def orientation_selectivity(filters: torch.Tensor | np.ndarray, *, fft_size: int = 32) -> np.ndarray:
    """Orientation-selectivity index of each filter from its Fourier energy.

    The filter (mean removed, zero-padded to ``fft_size``) has power spectrum ``E(f)`` summed over input
    channels, DC excluded. With ``theta(f)`` the orientation of frequency ``f``, the index is the resultant length
    of the doubled angle, ``|sum_f E(f) exp(2i theta(f))| / sum_f E(f)`` = 1 - circular variance: 1 for a
    grating-like filter (all energy on one orientation), near 0 for isotropic filters (a random 9x9 filter gives
    about 0.1-0.2).

    Parameters
    ----------
    filters
        (n, y, x) or (n, in_channels, y, x).
    fft_size
        Side of the zero-padded FFT (at least the filter side).

    Returns
    -------
    numpy.ndarray
        (n,) values in [0, 1].

    Examples
    --------
    >>> import numpy as np, lcl
    >>> y, x = np.mgrid[-4:5, -4:5]
    >>> grating = np.cos(2 * np.pi * x / 4) * np.exp(-(x**2 + y**2) / 8)
    >>> blob = np.exp(-(x**2 + y**2) / 8)
    >>> lcl.orientation_selectivity(np.stack([grating, blob])).round(2).tolist()
    [0.89, 0.0]
    """
    w = _weights(filters)
    fft_size = check_int("fft_size", fft_size, low=1, high=MAX_FFT_SIZE)
    if fft_size < max(w.shape[-2:]):
        raise ValueError(f"fft_size {fft_size} is smaller than the filters ({tuple(w.shape[-2:])})")
    w = w - w.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(w, s=(fft_size, fft_size)).abs().pow(2).sum(dim=1)
    fy = torch.fft.fftfreq(fft_size, dtype=torch.float64)[:, None].expand(fft_size, fft_size)
    fx = torch.fft.fftfreq(fft_size, dtype=torch.float64)[None, :].expand(fft_size, fft_size)
    theta = torch.atan2(fy, fx)
    power[:, 0, 0] = 0.0
    total = power.sum(dim=(-2, -1)).clamp_min(1e-30)
    resultant = (power * torch.exp(2j * theta)).sum(dim=(-2, -1)).abs()
    return (resultant / total).numpy()


def spatial_spread(filters: torch.Tensor | np.ndarray) -> np.ndarray:
    """Spatial spread of each filter's energy: RMS distance from its energy centroid, over the filter side.

    About 0.41 for filters with energy spread evenly over the square (random initialisations), smaller for
    localised filters (a Gaussian envelope of std ``s`` pixels gives ``s * sqrt(2) / side``).

    Parameters
    ----------
    filters
        (n, y, x) or (n, in_channels, y, x).

    Returns
    -------
    numpy.ndarray
        (n,) values.

    Examples
    --------
    >>> import numpy as np, lcl
    >>> y, x = np.mgrid[-4:5, -4:5]
    >>> lcl.spatial_spread(np.exp(-(x**2 + y**2) / 4)[None]).round(3).tolist()  # energy std 1 px per axis
    [0.157]
    >>> round(float(lcl.spatial_spread(np.ones((1, 9, 9)))[0]), 3)
    0.406
    """
    w = _weights(filters)
    e = w.pow(2).sum(dim=1)
    e = e / e.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-30)
    h, k = e.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(k, dtype=torch.float64),
                            indexing="ij")
    cy = (e * yy).sum(dim=(-2, -1), keepdim=True)
    cx = (e * xx).sum(dim=(-2, -1), keepdim=True)
    r2 = (e * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum(dim=(-2, -1))
    return (r2.sqrt() / max(h, k)).numpy()


def plot_filters(model_or_filters: torch.nn.Module | torch.Tensor | np.ndarray, path: str | os.PathLike, *,
                 columns: int = 8, title: str | None = None) -> list[Path]:
    """Figure of the stage-1 filters (each scaled to its own range), saved as PNG and PDF.

    Each panel is annotated with its orientation-selectivity index.

    Parameters
    ----------
    model_or_filters
        A :class:`lcl.V1V2` (its ``stage1.conv`` weights are drawn) or a filter array (n, [in,] y, x).
    path
        Output path; the suffix is replaced by ``.png`` and ``.pdf``.
    columns
        Panels per row.
    title
        Figure title.

    Returns
    -------
    list of pathlib.Path
        The PNG and PDF files (written atomically by :func:`data.save_figure`, one or two journal columns wide).

    Raises
    ------
    TypeError
        For a model without ``stage1.conv`` weights, a non-numeric filter array, a ``path`` that is not a path,
        a non-integer ``columns``, a non-string ``title``.
    ValueError
        For filters that are not 3-D or 4-D, hold NaN/inf, or ``columns`` outside [1, 1000].

    Examples
    --------
    >>> import lcl, tempfile, pathlib
    >>> files = lcl.plot_filters(lcl.V1V2(), pathlib.Path(tempfile.mkdtemp()) / "filters")
    >>> [f.suffix for f in files]
    ['.png', '.pdf']
    """
    from matplotlib.figure import Figure

    base = check_path("path", path)
    columns = check_int("columns", columns, low=1, high=1000)
    check_str("title", title, none=True)
    if isinstance(model_or_filters, torch.nn.Module):
        conv = getattr(getattr(model_or_filters, "stage1", None), "conv", None)
        if not isinstance(getattr(conv, "weight", None), torch.Tensor):
            raise TypeError(f"model_or_filters: a {type(model_or_filters).__name__} has no stage1.conv weights; "
                            "pass an lcl.V1V2 or a filter array")
        filters = conv.weight
    else:
        filters = model_or_filters
    w = _weights(filters)
    osi = orientation_selectivity(w)
    img = w.mean(dim=1).numpy()  # grayscale view (mean over input channels)
    n = img.shape[0]
    cols = min(columns, n)
    rows = int(np.ceil(n / cols))
    with data.figure_style():
        fig = Figure(figsize=(1.1 * cols, 1.25 * rows + (0.4 if title else 0)), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for i, ax in enumerate(axes.flat[:n]):
            v = float(np.abs(img[i]).max()) or 1.0
            ax.imshow(img[i], cmap="gray", vmin=-v, vmax=v, interpolation="nearest")
            ax.set_title(f"{osi[i]:.2f}", fontsize=7)
        fig.suptitle(title or f"stage-1 filters (orientation selectivity, median {np.median(osi):.2f})",
                     fontsize=9)
        return data.save_figure(fig, base, width="single" if cols <= 4 else "double")
