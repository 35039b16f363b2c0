"""Publication figures for every package: one matplotlib style, journal widths, files written atomically."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cycler import cycler

from ._checks import check_int, check_path
from ._io import atomic_write

__all__ = ["FIGURE_STYLE", "JOURNAL_WIDTHS", "figure_style", "save_figure"]

#: Figure widths in inches of a journal's single column and full page width (Nature, Cell, J Neurosci, PLoS
#: all lie within 3.3-3.5 in and 6.7-7.2 in).
JOURNAL_WIDTHS: dict[str, float] = {"single": 3.5, "double": 7.0}

FIGURE_STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.2,
    "figure.dpi": 100,
    "savefig.dpi": 300,
    "pdf.fonttype": 42,  # editable text in the PDF
    "ps.fonttype": 42,
    "image.cmap": "gray",
    "axes.prop_cycle": cycler(
        color=["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6c4f96", "#00798c", "#8a8a8a"]),
}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Context in which matplotlib uses the workbench style (:data:`FIGURE_STYLE`).

    Library code never calls ``matplotlib.use``: figures are built as ``matplotlib.figure.Figure`` objects, which
    need no GUI backend, inside this context.

    Yields
    ------
    None

    Examples
    --------
    >>> import matplotlib, data
    >>> with data.figure_style():
    ...     matplotlib.rcParams["pdf.fonttype"]
    42
    """
    import matplotlib

    with matplotlib.rc_context(FIGURE_STYLE):
        yield


def _width(width: str | float | None) -> float | None:
    if width is None:
        return None
    if isinstance(width, str):
        if width not in JOURNAL_WIDTHS:
            raise ValueError(f"width must be one of {sorted(JOURNAL_WIDTHS)} or inches, got {width!r}")
        return JOURNAL_WIDTHS[width]
    if isinstance(width, bool) or not isinstance(width, (int, float)):
        raise TypeError(f"width must be 'single', 'double', a number of inches or None, got {type(width).__name__}")
    if not 0.5 <= float(width) <= 20:
        raise ValueError(f"width must be between 0.5 and 20 inches, got {width!r}")
    return float(width)


def save_figure(fig: Any, path_stem: str | os.PathLike, *, width: str | float | None = None,
                height: float | None = None, formats: tuple[str, ...] = ("png", "pdf"),
                dpi: int = 300) -> list[Path]:
    """Write a figure at a journal width, as PNG and PDF, each atomically (no partial file, even on error).

    The one figure-saving function of the workbench: ``lcl``, ``decoding`` and ``analyses`` all save through it.

    Parameters
    ----------
    fig
        A matplotlib ``Figure``.
    path_stem
        Destination without suffix (a given image suffix is replaced), e.g. ``out/texture_modulation``.
    width
        ``"single"`` (3.5 in, one journal column), ``"double"`` (7.0 in, full page width), a width in inches, or
        None to keep the figure's own size (then the saved area is cropped to the drawn content). The height
        scales with the width unless ``height`` is given; the file has exactly this size (a constrained layout
        fits the axes when the figure has no layout engine).
    height
        Height in inches (with ``width``); None keeps the figure's aspect ratio.
    formats
        File formats to write (matplotlib's names: ``"png"``, ``"pdf"``, ``"svg"`` ...).
    dpi
        Resolution of raster formats, in ``[1, 2400]``.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    TypeError
        Before writing anything: ``fig`` is not a matplotlib figure, ``path_stem`` not a path, ``formats`` not a
        list of strings, ``dpi`` not an integer, ``width`` not a name or number.
    ValueError
        Before writing anything: no or unsupported formats, ``dpi``, ``width`` or ``height`` out of range.

    Examples
    --------
    >>> import tempfile, pathlib, data
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(figsize=(4, 2)); _ = fig.add_subplot().plot([0, 1])
    >>> paths = data.save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "line", width="single")
    >>> [p.suffix for p in paths], [float(v) for v in fig.get_size_inches()]
    (['.png', '.pdf'], [3.5, 1.75])
    """
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    stem = check_path("path_stem", path_stem)
    if isinstance(formats, (str, bytes)) or not isinstance(formats, (tuple, list)) \
            or not all(isinstance(f, str) for f in formats):
        raise TypeError(f"formats must be a tuple of format names such as ('png', 'pdf'), got {formats!r:.60}")
    supported = fig.canvas.get_supported_filetypes()
    unknown = [f for f in formats if f not in supported]
    if not formats or unknown:
        raise ValueError(f"formats must name at least one of {sorted(supported)}, got {tuple(formats)!r}")
    dpi = check_int("dpi", dpi, low=1, high=2400)
    w = _width(width)
    if height is not None:
        if w is None:
            raise ValueError("height needs width: give width='single', 'double' or inches")
        if isinstance(height, bool) or not isinstance(height, (int, float)) or not 0.5 <= float(height) <= 30:
            raise ValueError(f"height must be a number of inches between 0.5 and 30, got {height!r}")
    if w is not None:  # the file is exactly this size: a layout engine fits the axes, no tight-bbox cropping
        w0, h0 = fig.get_size_inches()
        fig.set_size_inches(w, float(height) if height is not None else h0 * w / w0)
        if fig.get_layout_engine() is None:
            fig.set_layout_engine("constrained")
    if stem.suffix.lower() in (".png", ".pdf", ".svg", ".jpg", ".eps"):
        stem = stem.with_suffix("")
    written = []
    for ext in formats:
        target = stem.with_name(f"{stem.name}.{ext}")
        with atomic_write(target) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches=None if w is not None else "tight")
        written.append(target)
    return written
