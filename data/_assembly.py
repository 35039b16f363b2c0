"""Assemblies (plain ``xarray.DataArray``) and stimulus sets (plain ``xarray.Dataset``): build and validate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from ._checks import check_float, check_real_dtype, check_str

__all__ = ["assembly", "validate_assembly", "stimulus_set", "validate_stimuli"]

ASSEMBLY_DIMS = ("presentation", "neuroid")
ASSEMBLY_DIMS_TIME = ("presentation", "neuroid", "time_bin")
STIMULUS_DIMS = ("stimulus_id", "y", "x")
STIMULUS_DIMS_COLOR = ("stimulus_id", "y", "x", "channel")

# Where a coordinate goes when its length alone does not say (presentation and neuroid of equal size).
_PRESENTATION_COORDS = {
    "stimulus_id", "category", "object_name", "texture_family", "texture_type", "sample", "repetition",
    "image_id", "source_image", "family",
}
_NEUROID_COORDS = {"neuroid_id", "region", "layer", "source", "channel", "unit", "y", "x", "cell_type", "animal"}
_TIME_COORDS = {"time_bin_start", "time_bin_end"}


def _as_1d(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"coordinate {name!r} must be one-dimensional, got shape {arr.shape}")
    return arr


def assembly(
    values: Any,
    stimulus_id: Any,
    neuroid_id: Any,
    *,
    attrs: Mapping[str, Any] | None = None,
    name: str | None = None,
    **coords: Any,
) -> xr.DataArray:
    """Build a validated assembly: a plain DataArray with dims ``(presentation, neuroid[, time_bin])``.

    Parameters
    ----------
    values
        Array of shape ``(n_presentations, n_neuroids)`` or ``(n_presentations, n_neuroids, n_time_bins)``.
    stimulus_id
        One id per presentation (ids may repeat across repetitions when a ``repetition`` coordinate is given).
    neuroid_id
        One unique id per neuroid.
    attrs
        Attributes to attach (strings, numbers or numeric arrays, so that they survive :func:`data.save`).
    name
        Name of the DataArray.
    **coords
        Further metadata. Each is a 1-D array whose dimension is inferred from its length, or an explicit
        ``(dim, values)`` pair. When presentation and neuroid have the same length, well-known names
        (``category``, ``texture_family``, ``repetition`` ... vs. ``region``, ``layer``, ``source`` ...) decide;
        any other name must be given as ``(dim, values)``.

    Returns
    -------
    xarray.DataArray
        The assembly, already checked by :func:`validate_assembly`.

    Raises
    ------
    TypeError
        For values that are not real numbers (complex, strings, objects).
    ValueError
        For wrong shapes, coordinate length mismatches, duplicate ids or non-finite values.

    Examples
    --------
    >>> import numpy as np
    >>> import data
    >>> a = data.assembly(np.ones((3, 2)), stimulus_id=["a", "b", "c"], neuroid_id=["n0", "n1"],
    ...                   category=["x", "x", "y"], region=["V1", "V2"])
    >>> a.dims
    ('presentation', 'neuroid')
    >>> str(a.region.values[1])
    'V2'
    """
    if attrs is not None and not isinstance(attrs, Mapping):
        raise TypeError(f"attrs must be a mapping, got {type(attrs).__name__}")
    check_str("name", name, none=True)
    arr = np.asarray(values)
    check_real_dtype("assembly values", arr.dtype)
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"assembly values must be 2-D (presentation, neuroid) or 3-D (presentation, neuroid, time_bin); "
            f"got {arr.ndim}-D with shape {arr.shape}"
        )
    dims = ASSEMBLY_DIMS if arr.ndim == 2 else ASSEMBLY_DIMS_TIME
    sizes = dict(zip(dims, arr.shape))
    all_coords: dict[str, tuple[str, np.ndarray]] = {
        "stimulus_id": ("presentation", _as_1d("stimulus_id", stimulus_id)),
        "neuroid_id": ("neuroid", _as_1d("neuroid_id", neuroid_id)),
    }
    for key, val in coords.items():
        if isinstance(val, tuple) and len(val) == 2 and isinstance(val[0], str):
            dim, v = val[0], _as_1d(key, val[1])
            if dim not in sizes:
                raise ValueError(f"coordinate {key!r} names dim {dim!r}; the assembly has dims {dims}")
        else:
            v = _as_1d(key, val)
            matches = [d for d in dims if sizes[d] == len(v)]
            if len(matches) > 1:
                preferred = (
                    "presentation" if key in _PRESENTATION_COORDS
                    else "neuroid" if key in _NEUROID_COORDS
                    else "time_bin" if key in _TIME_COORDS else None
                )
                if preferred not in matches:
                    raise ValueError(
                        f"coordinate {key!r} has length {len(v)}, which fits dims {matches}; "
                        f"pass it as {key}=(dim, values)"
                    )
                matches = [preferred]
            if not matches:
                raise ValueError(
                    f"coordinate {key!r} has length {len(v)}, which matches no dim (sizes: {sizes})"
                )
            dim = matches[0]
        all_coords[key] = (dim, v)
    for key, (dim, v) in all_coords.items():
        if len(v) != sizes[dim]:
            raise ValueError(
                f"coordinate {key!r} has length {len(v)} but dim {dim!r} has length {sizes[dim]}"
            )
    da = xr.DataArray(arr, dims=dims, coords=all_coords, attrs=dict(attrs or {}), name=name)
    return validate_assembly(da)


def _check_unique(values: np.ndarray, what: str) -> None:
    uniq, counts = np.unique(values.astype(str), return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][:5].tolist()
        raise ValueError(f"duplicate {what}: {dup}")


def _check_finite(values: np.ndarray, what: str) -> None:
    if np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.complexfloating):
        bad = ~np.isfinite(values)
        if bad.any():
            kind = "NaN" if np.isnan(values[bad]).any() else "inf"
            raise ValueError(f"{what} contains {kind} values ({int(bad.sum())} of {values.size})")


def validate_assembly(a: Any) -> xr.DataArray:
    """Check that ``a`` is a well-formed assembly; return it unchanged.

    An assembly is a plain ``xarray.DataArray`` with dims ``(presentation, neuroid)`` or
    ``(presentation, neuroid, time_bin)``, a ``stimulus_id`` coordinate on presentation, a unique ``neuroid_id``
    coordinate on neuroid, finite numeric values and every other coordinate one-dimensional on one of its dims.
    Presentations are unique by ``stimulus_id`` (or by ``(stimulus_id, repetition)`` when a ``repetition``
    coordinate exists).

    Parameters
    ----------
    a
        The object to check.

    Returns
    -------
    xarray.DataArray
        ``a`` itself.

    Raises
    ------
    TypeError
        If ``a`` is not an ``xarray.DataArray`` or its values are not real numbers (complex, strings, objects).
    ValueError
        Naming the problem: wrong dims, missing ``stimulus_id``/``neuroid_id``, duplicate ids, NaN or inf,
        empty dims, a coordinate on the wrong dim.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> import data
    >>> bad = xr.DataArray(np.zeros((2, 2)), dims=("presentation", "neuroid"))
    >>> data.validate_assembly(bad)
    Traceback (most recent call last):
    ...
    ValueError: assembly is missing the 'stimulus_id' coordinate on 'presentation'
    """
    if not isinstance(a, xr.DataArray):
        raise TypeError(f"an assembly must be an xarray.DataArray, got {type(a).__name__}")
    if a.dims not in (ASSEMBLY_DIMS, ASSEMBLY_DIMS_TIME):
        raise ValueError(
            f"assembly dims must be {ASSEMBLY_DIMS} or {ASSEMBLY_DIMS_TIME}, got {a.dims}"
        )
    for dim in a.dims:
        if a.sizes[dim] == 0:
            raise ValueError(f"assembly has an empty {dim!r} dim")
    check_real_dtype("assembly values", a.dtype)
    for coord, dim in (("stimulus_id", "presentation"), ("neuroid_id", "neuroid")):
        if coord not in a.coords:
            raise ValueError(f"assembly is missing the {coord!r} coordinate on {dim!r}")
        if a[coord].dims != (dim,):
            raise ValueError(f"coordinate {coord!r} must lie on dim {dim!r}, found dims {a[coord].dims}")
    for name, c in a.coords.items():
        if c.ndim != 1:
            raise ValueError(f"coordinate {name!r} must be one-dimensional, found dims {c.dims}")
    _check_unique(a["neuroid_id"].values, "neuroid_id")
    if "repetition" in a.coords and a["repetition"].dims == ("presentation",):
        keys = np.char.add(np.char.add(a["stimulus_id"].values.astype(str), "\x00"),
                           a["repetition"].values.astype(str))
        _check_unique(keys, "(stimulus_id, repetition) pairs")
    else:
        _check_unique(a["stimulus_id"].values, "stimulus_id (add a 'repetition' coordinate for repeats)")
    _check_finite(np.asarray(a.values), "assembly")
    return a


def stimulus_set(
    images: Any,
    stimulus_id: Any = None,
    *,
    degrees: float = 4.0,
    attrs: Mapping[str, Any] | None = None,
    **metadata: Any,
) -> xr.Dataset:
    """Build a validated stimulus set: an ``xarray.Dataset`` with ``image (stimulus_id, y, x[, channel])``.

    Parameters
    ----------
    images
        Array ``(n, y, x)`` (grayscale) or ``(n, y, x, channel)``, values in [0, 1].
    stimulus_id
        One unique id per image; default ``"stim000"``, ``"stim001"``, ...
    degrees
        Visual angle spanned by the image width, stored as the ``degrees`` attribute (default 4, as in
        FreemanZiemba2013).
    attrs
        Further attributes.
    **metadata
        Per-stimulus 1-D metadata (``category``, ``source``, ``texture_family``, ...).

    Returns
    -------
    xarray.Dataset
        The stimulus set, checked by :func:`validate_stimuli`.

    Raises
    ------
    TypeError
        For images that are not real numbers (complex, bool, strings).
    ValueError
        For a wrong shape, mismatched ids or metadata, values outside [0, 1] or NaN, ``degrees`` not a positive
        finite number.

    Examples
    --------
    >>> import numpy as np
    >>> import data
    >>> s = data.stimulus_set(np.zeros((2, 8, 8)), category=["a", "b"])
    >>> s.stimulus_id.values.tolist()
    ['stim000', 'stim001']
    >>> s.attrs["degrees"]
    4.0
    """
    degrees = check_float("degrees", degrees, low=0.0, low_open=True)
    if attrs is not None and not isinstance(attrs, Mapping):
        raise TypeError(f"attrs must be a mapping, got {type(attrs).__name__}")
    arr = np.asarray(images)
    check_real_dtype("images", arr.dtype, allow_bool=False)
    if arr.ndim not in (3, 4):
        raise ValueError(f"images must be (n, y, x) or (n, y, x, channel), got shape {arr.shape}")
    n = arr.shape[0]
    if stimulus_id is None:
        stimulus_id = [f"stim{i:03d}" for i in range(n)]
    ids = _as_1d("stimulus_id", stimulus_id)
    if len(ids) != n:
        raise ValueError(f"stimulus_id has length {len(ids)} but there are {n} images")
    dims = STIMULUS_DIMS if arr.ndim == 3 else STIMULUS_DIMS_COLOR
    coords: dict[str, Any] = {"stimulus_id": ids}
    for key, val in metadata.items():
        v = _as_1d(key, val)
        if len(v) != n:
            raise ValueError(f"metadata {key!r} has length {len(v)} but there are {n} images")
        coords[key] = ("stimulus_id", v)
    ds = xr.Dataset({"image": (dims, arr)}, coords=coords,
                    attrs={"degrees": degrees, **dict(attrs or {})})
    return validate_stimuli(ds)


def validate_stimuli(s: Any) -> xr.Dataset:
    """Check that ``s`` is a well-formed stimulus set; return it unchanged.

    Parameters
    ----------
    s
        An ``xarray.Dataset`` with an ``image`` variable of dims ``(stimulus_id, y, x)`` or
        ``(stimulus_id, y, x, channel)``, finite values in [0, 1], unique ``stimulus_id`` and a positive
        ``degrees`` attribute.

    Returns
    -------
    xarray.Dataset
        ``s`` itself.

    Raises
    ------
    TypeError
        If ``s`` is not a Dataset, or its images are not real numbers (complex, bool, strings).
    ValueError
        Naming the problem.

    Examples
    --------
    >>> import numpy as np
    >>> import data
    >>> s = data.stimulus_set(np.full((1, 4, 4), 0.5))
    >>> data.validate_stimuli(s) is s
    True
    """
    if not isinstance(s, xr.Dataset):
        raise TypeError(f"a stimulus set must be an xarray.Dataset, got {type(s).__name__}")
    if "image" not in s.data_vars:
        raise ValueError("stimulus set has no 'image' variable")
    img = s["image"]
    if img.dims not in (STIMULUS_DIMS, STIMULUS_DIMS_COLOR):
        raise ValueError(f"'image' dims must be {STIMULUS_DIMS} or {STIMULUS_DIMS_COLOR}, got {img.dims}")
    if any(img.sizes[d] == 0 for d in img.dims):
        raise ValueError(f"stimulus set is empty (sizes {dict(img.sizes)})")
    if "stimulus_id" not in s.coords:
        raise ValueError("stimulus set is missing the 'stimulus_id' coordinate")
    _check_unique(s["stimulus_id"].values, "stimulus_id")
    check_real_dtype("stimulus images", img.dtype, allow_bool=False)
    vals = np.asarray(img.values)
    _check_finite(vals, "stimulus images")
    lo, hi = float(vals.min()), float(vals.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"stimulus images must lie in [0, 1]; found range [{lo:.4g}, {hi:.4g}]")
    deg = s.attrs.get("degrees")
    if deg is None:
        raise ValueError("stimulus set is missing the 'degrees' attribute (visual angle of the image width)")
    check_float("the 'degrees' attribute", deg, low=0.0, low_open=True)
    for name, c in s.coords.items():
        if name != "stimulus_id" and c.dims not in (("stimulus_id",), ("y",), ("x",), ("channel",)):
            raise ValueError(f"stimulus metadata {name!r} must lie on one dim, found dims {c.dims}")
    return s
