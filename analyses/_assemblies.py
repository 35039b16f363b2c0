"""Assembly preprocessing shared by the metrics: response-window and repetition averages (Brain-Score style)."""

from __future__ import annotations

import numpy as np
import xarray as xr

import data
from data._checks import check_float

__all__ = ["average_time", "average_repetitions", "RESPONSE_WINDOW_MS"]

# FreemanZiemba2013 in Brain-Score: responses averaged over 1-ms bins from 50 to 200 ms after onset.
RESPONSE_WINDOW_MS = (50.0, 200.0)


def average_time(assembly: xr.DataArray, window_ms: tuple[float, float] | None = RESPONSE_WINDOW_MS
                 ) -> xr.DataArray:
    """Average the ``time_bin`` dim over the bins that lie inside a response window.

    A bin ``[time_bin_start, time_bin_end)`` is used when it lies entirely inside ``window_ms`` (Brain-Score's
    FreemanZiemba2013 benchmark averages the 1-ms bins from 50 to 200 ms). Assemblies without a ``time_bin`` dim
    are returned unchanged.

    Parameters
    ----------
    assembly
        Assembly ``(presentation, neuroid[, time_bin])``.
    window_ms
        ``(start, end)`` in ms; ``None`` averages all bins.

    Returns
    -------
    xarray.DataArray
        ``(presentation, neuroid)`` assembly; attrs ``window_start_ms``/``window_end_ms`` record the bins used.

    Raises
    ------
    TypeError
        If ``window_ms`` is not a pair of numbers (or None).
    ValueError
        If the assembly has time bins but no ``time_bin_start``/``time_bin_end`` coordinates (with a window), no
        bin lies in the window, or the window's start is not below its end (or is NaN).

    Examples
    --------
    >>> import numpy as np, data, analyses
    >>> v = np.zeros((1, 1, 3)); v[0, 0] = [100.0, 2.0, 4.0]
    >>> a = data.assembly(v, stimulus_id=["s"], neuroid_id=["n"], time_bin_start=[0, 50, 100],
    ...                   time_bin_end=[50, 100, 150])
    >>> float(analyses.average_time(a, (50, 200)).values[0, 0])
    3.0
    """
    data.validate_assembly(assembly)
    if window_ms is not None:
        if isinstance(window_ms, (str, bytes)) or not isinstance(window_ms, (tuple, list)) or len(window_ms) != 2:
            raise TypeError(f"window_ms must be (start, end) in ms or None, got {window_ms!r:.60}")
        start, end = (check_float("window_ms[0]", window_ms[0], finite=False),
                      check_float("window_ms[1]", window_ms[1], finite=False))
        if not start < end:
            raise ValueError(f"window_ms must be (start, end) with start < end, got {window_ms}")
    if "time_bin" not in assembly.dims:
        return assembly
    if window_ms is None:
        out = assembly.mean("time_bin", keep_attrs=True)
        sel = np.ones(assembly.sizes["time_bin"], dtype=bool)
    else:
        if "time_bin_start" not in assembly.coords or "time_bin_end" not in assembly.coords:
            raise ValueError("assembly has a time_bin dim but no time_bin_start / time_bin_end coordinates, so the "
                             f"response window {window_ms} ms cannot be selected (pass window_ms=None to average all)")
        start = np.asarray(assembly["time_bin_start"].values, dtype=float)
        end = np.asarray(assembly["time_bin_end"].values, dtype=float)
        sel = (start >= window_ms[0]) & (end <= window_ms[1])
        if not sel.any():
            raise ValueError(f"no time bin lies inside the response window {window_ms} ms "
                             f"(bins span {start.min():g}-{end.max():g} ms)")
        out = assembly.isel(time_bin=np.flatnonzero(sel)).mean("time_bin", keep_attrs=True)
    out = out.drop_vars([n for n in ("time_bin_start", "time_bin_end") if n in out.coords])
    if window_ms is not None:
        out.attrs = {**out.attrs, "window_start_ms": float(window_ms[0]), "window_end_ms": float(window_ms[1])}
    return out


def average_repetitions(assembly: xr.DataArray) -> xr.DataArray:
    """Average all presentations of each ``stimulus_id`` (repetitions), keeping per-stimulus metadata.

    Presentation coordinates that are constant within every stimulus (``texture_family``, ``texture_type``,
    ``sample`` ...) are kept; ``repetition`` and any coordinate that varies across repetitions are dropped.
    Stimuli keep the order of their first appearance.

    Parameters
    ----------
    assembly
        Assembly ``(presentation, neuroid[, time_bin])``.

    Returns
    -------
    xarray.DataArray
        One presentation per ``stimulus_id``.

    Examples
    --------
    >>> import numpy as np, data, analyses
    >>> a = data.assembly(np.array([[1.0], [3.0], [10.0]]), stimulus_id=["a", "a", "b"], neuroid_id=["n"],
    ...                   repetition=[0, 1, 0], texture_type=["noise", "noise", "texture"])
    >>> m = analyses.average_repetitions(a)
    >>> m.values[:, 0].tolist(), m.texture_type.values.tolist()
    ([2.0, 10.0], ['noise', 'texture'])
    """
    data.validate_assembly(assembly)
    ids = np.asarray(assembly["stimulus_id"].values)
    uniq, first, inverse = np.unique(ids.astype(str), return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    group = rank[inverse]  # group index in order of first appearance
    n_groups = len(uniq)
    counts = np.bincount(group, minlength=n_groups).astype(float)
    values = np.asarray(assembly.values, dtype=np.float64)
    summed = np.zeros((n_groups, *values.shape[1:]))
    np.add.at(summed, group, values)
    mean = summed / counts.reshape(-1, *([1] * (values.ndim - 1)))
    first_rows = first[order]
    coords = {}
    for name, c in assembly.coords.items():
        if c.dims == ("presentation",):
            if name == "repetition":
                continue
            v = np.asarray(c.values)
            if (v == v[first_rows][group]).all():
                coords[name] = ("presentation", v[first_rows])
        else:
            coords[name] = c
    out = xr.DataArray(mean, dims=assembly.dims, coords=coords, attrs=dict(assembly.attrs), name=assembly.name)
    return data.validate_assembly(out)
