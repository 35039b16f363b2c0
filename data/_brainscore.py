"""Brain-Score (BrainIO) files both ways, with plain xarray: Brain-Score itself is never imported.

BrainIO stores an assembly as netCDF with one variable ``data`` whose MultiIndex coordinates were flattened by
``reset_index`` (so ``stimulus_id``, ``repetition``, ``neuroid_id``, ``region``, ``time_bin_start`` ... are plain
coordinates), and a stimulus set as a CSV (``stimulus_id``, ``filename``, metadata) plus a zip of the image files.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ._assembly import ASSEMBLY_DIMS, ASSEMBLY_DIMS_TIME, stimulus_set, validate_assembly, validate_stimuli
from ._checks import check_float, check_path
from ._io import atomic_write

__all__ = ["from_brainscore", "to_brainscore", "read_brainscore_stimuli", "write_brainscore_stimuli",
           "merge_stimulus_metadata"]


def _brainio_dataarray(ds: xr.Dataset, path: Path) -> xr.DataArray:
    if "data" in ds.data_vars:
        return ds["data"]
    if len(ds.data_vars) == 1:
        return next(iter(ds.data_vars.values()))
    raise ValueError(f"{path} is not a Brain-Score assembly: expected one variable 'data', "
                     f"found {sorted(ds.data_vars)}")


def from_brainscore(nc_path: str | os.PathLike, stimulus_csv: str | os.PathLike | None = None,
                    stimulus_zip: str | os.PathLike | None = None, *, degrees: float = 4.0
                    ) -> xr.DataArray | tuple[xr.DataArray, xr.Dataset]:
    """Read a Brain-Score assembly file (and optionally its stimulus set) as our assembly.

    Point it at the files of a Brain-Score cache, e.g.
    ``$BRAINIO_HOME/<sha1>/assy_movshon_FreemanZiemba2013_public.nc`` and the stimulus CSV + zip.

    Parameters
    ----------
    nc_path
        BrainIO netCDF file (one variable ``data``; flattened coordinates).
    stimulus_csv
        BrainIO stimulus CSV (``stimulus_id``, ``filename``, metadata), optional.
    stimulus_zip
        The matching zip of images; required with ``stimulus_csv``.
    degrees
        Visual angle of the stimuli (FreemanZiemba2013: 4 degrees).

    Returns
    -------
    xarray.DataArray or (xarray.DataArray, xarray.Dataset)
        The assembly, dims ``(presentation, neuroid[, time_bin])``; with ``stimulus_csv`` also the stimulus set,
        whose per-stimulus metadata (e.g. ``texture_type``) is merged onto the presentations
        (:func:`merge_stimulus_metadata`), as Brain-Score does. A legacy ``image_id`` coordinate (older BrainIO
        packages) is renamed ``stimulus_id``.

    Raises
    ------
    ValueError
        If the file lacks the dims or coordinates of an assembly, or the stimulus files do not match.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, data
    >>> a = data.assembly(np.ones((2, 3)), stimulus_id=["s0", "s1"], neuroid_id=["n0", "n1", "n2"])
    >>> p = data.to_brainscore(a, pathlib.Path(tempfile.mkdtemp()) / "assy.nc")
    >>> b = data.from_brainscore(p)
    >>> b.dims, b.neuroid_id.values.tolist()
    (('presentation', 'neuroid'), ['n0', 'n1', 'n2'])
    """
    nc_path = check_path("nc_path", nc_path)
    stimulus_csv = check_path("stimulus_csv", stimulus_csv, none=True)
    stimulus_zip = check_path("stimulus_zip", stimulus_zip, none=True)
    degrees = check_float("degrees", degrees, low=0.0, low_open=True)
    if not nc_path.is_file():
        raise FileNotFoundError(f"no such Brain-Score assembly file: {nc_path}")
    with xr.open_dataset(nc_path) as ds:
        da = _brainio_dataarray(ds, nc_path).load()
    missing_dims = [d for d in ASSEMBLY_DIMS if d not in da.dims]
    extra_dims = [d for d in da.dims if d not in ASSEMBLY_DIMS_TIME]
    if missing_dims or extra_dims:
        raise ValueError(f"{nc_path}: a neural assembly needs dims {ASSEMBLY_DIMS}[+time_bin], found {da.dims}")
    da = da.transpose(*[d for d in ASSEMBLY_DIMS_TIME if d in da.dims])
    # Leftovers of BrainIO's reset_index: '<dim>' or '<dim>_' variables holding the old index.
    drop = [name for name in da.coords if name in da.dims or name.rstrip("_") in da.dims]
    da = da.drop_vars(drop)
    da = da.drop_indexes([name for name in da.indexes]) if da.indexes else da
    if "stimulus_id" not in da.coords and "image_id" in da.coords:
        # older BrainIO packages (before brainio 0.2 / Brain-Score 2.0) name the stimulus coordinate image_id
        da = da.rename({"image_id": "stimulus_id"})
    da.name = None
    da.attrs = {k: v for k, v in da.attrs.items() if isinstance(v, (str, int, float, np.number, np.ndarray))}
    validate_assembly(da)
    if stimulus_csv is None:
        return da
    stimuli = read_brainscore_stimuli(stimulus_csv, stimulus_zip, degrees=degrees)
    unknown = set(da["stimulus_id"].values.astype(str)) - set(stimuli["stimulus_id"].values.astype(str))
    if unknown:
        raise ValueError(f"{len(unknown)} stimulus_id(s) of the assembly are not in {stimulus_csv}, "
                         f"e.g. {sorted(unknown)[:3]}")
    return merge_stimulus_metadata(da, stimuli, source=str(stimulus_csv)), stimuli


def merge_stimulus_metadata(assembly: xr.DataArray, stimuli: xr.Dataset, *, source: str = "the stimulus set"
                            ) -> xr.DataArray:
    """Copy the stimulus set's per-stimulus metadata onto the assembly's presentations, by ``stimulus_id``.

    BrainIO keeps stimulus metadata (``texture_type``, ``texture_family`` ...) in the stimulus CSV; Brain-Score
    joins it onto the assembly when it loads one. Coordinates the assembly already has are kept, and must agree
    with the stimulus set where both have them.

    Parameters
    ----------
    assembly
        Assembly ``(presentation, neuroid[, time_bin])``.
    stimuli
        Stimulus set holding every stimulus of the assembly.
    source
        Name of the stimulus set in error messages.

    Returns
    -------
    xarray.DataArray
        The assembly with the added presentation coordinates.

    Raises
    ------
    ValueError
        If a stimulus of the assembly is missing from the stimulus set, or a coordinate both have disagrees.

    Examples
    --------
    >>> import numpy as np, data
    >>> s = data.stimulus_set(np.zeros((2, 4, 4)), stimulus_id=["a", "b"], texture_type=["noise", "texture"])
    >>> a = data.assembly(np.ones((3, 1)), stimulus_id=["b", "a", "b"], neuroid_id=["n"], repetition=[0, 0, 1])
    >>> data.merge_stimulus_metadata(a, s).texture_type.values.tolist()
    ['texture', 'noise', 'texture']
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    validate_assembly(assembly)
    validate_stimuli(stimuli)
    ids = np.asarray(stimuli["stimulus_id"].values).astype(str)
    pos = {s: i for i, s in enumerate(ids)}
    wanted = np.asarray(assembly["stimulus_id"].values).astype(str)
    missing = sorted(set(wanted) - set(pos))
    if missing:
        raise ValueError(f"{len(missing)} stimulus_id(s) of the assembly are not in {source}, e.g. {missing[:3]}")
    rows = np.array([pos[s] for s in wanted], dtype=int)
    out = assembly
    for name, coord in stimuli.coords.items():
        if name == "stimulus_id" or coord.dims != ("stimulus_id",):
            continue
        values = np.asarray(coord.values)[rows]
        if name in out.coords:
            have = np.asarray(out[name].values)
            if out[name].dims != ("presentation",) or not np.array_equal(have.astype(str), values.astype(str)):
                raise ValueError(f"coordinate {name!r} of the assembly disagrees with {source}")
            continue
        out = out.assign_coords({name: ("presentation", values)})
    return out


def read_brainscore_stimuli(stimulus_csv: str | os.PathLike, stimulus_zip: str | os.PathLike | None,
                            *, degrees: float = 4.0) -> xr.Dataset:
    """Read a BrainIO stimulus set (CSV + zip of images) as our grayscale stimulus set.

    Parameters
    ----------
    stimulus_csv
        CSV with columns ``stimulus_id``, ``filename`` and metadata.
    stimulus_zip
        Zip holding the files named in ``filename``.
    degrees
        Visual angle of the images.

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    ValueError
        If the zip is missing, a file is not in the zip, or images differ in size.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, data
    >>> s = data.stimulus_set(np.zeros((2, 4, 4)), stimulus_id=["a", "b"], category=["x", "y"])
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = data.write_brainscore_stimuli(s, d / "s.csv", d / "s.zip")
    >>> data.read_brainscore_stimuli(d / "s.csv", d / "s.zip").category.values.tolist()
    ['x', 'y']
    """
    import imageio.v3 as iio

    from ._images import _to_gray_float

    stimulus_csv = check_path("stimulus_csv", stimulus_csv)
    if stimulus_zip is None:
        raise ValueError("stimulus_zip is required with stimulus_csv (BrainIO keeps the images in a zip)")
    stimulus_zip = check_path("stimulus_zip", stimulus_zip)
    degrees = check_float("degrees", degrees, low=0.0, low_open=True)
    with open(stimulus_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{stimulus_csv} has no rows")
    id_col = "stimulus_id" if "stimulus_id" in rows[0] else "image_id" if "image_id" in rows[0] else None
    if id_col is None or "filename" not in rows[0]:
        raise ValueError(f"{stimulus_csv} must have 'stimulus_id' and 'filename' columns; has {list(rows[0])}")
    images = []
    with zipfile.ZipFile(stimulus_zip) as zf:
        by_base = {Path(n).name: n for n in zf.namelist()}
        for row in rows:
            member = row["filename"] if row["filename"] in zf.namelist() else by_base.get(Path(row["filename"]).name)
            if member is None:
                raise ValueError(f"{row['filename']} (stimulus {row[id_col]}) is not in {stimulus_zip}")
            images.append(_to_gray_float(iio.imread(zf.read(member), extension=Path(member).suffix),
                                         what=f"image {member} of {stimulus_zip}"))
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"stimulus images differ in size: {sorted(shapes)[:4]}")
    meta: dict[str, Any] = {}
    for col in rows[0]:
        if col in (id_col, "filename"):
            continue
        vals = [r[col] for r in rows]
        try:
            meta[col] = np.array([int(v) for v in vals])
        except ValueError:
            try:
                meta[col] = np.array([float(v) for v in vals])
            except ValueError:
                meta[col] = np.array(vals)
    meta["filename"] = np.array([r["filename"] for r in rows])
    return stimulus_set(np.stack(images).astype(np.float32), stimulus_id=[r[id_col] for r in rows],
                        degrees=degrees, **meta)


def to_brainscore(assembly: xr.DataArray, nc_path: str | os.PathLike) -> Path:
    """Write an assembly in BrainIO's netCDF layout (one variable ``data``, plain coordinates), atomically.

    Brain-Score (e.g. ``PrecomputedFeatures``, or its assembly loaders, which call
    ``xarray.open_dataarray``) reads the file and re-stacks the coordinates into its MultiIndexes.

    Parameters
    ----------
    assembly
        A valid assembly.
    nc_path
        Destination ``.nc`` file.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, xarray as xr, data
    >>> a = data.assembly(np.ones((2, 1)), stimulus_id=["s0", "s1"], neuroid_id=["n0"])
    >>> p = data.to_brainscore(a, pathlib.Path(tempfile.mkdtemp()) / "assy.nc")
    >>> xr.open_dataarray(p).name
    'data'
    """
    validate_assembly(assembly)
    nc_path = check_path("nc_path", nc_path)
    da = assembly.copy(deep=False)
    da = da.drop_indexes(list(da.indexes)) if da.indexes else da
    da.attrs = {k: v for k, v in da.attrs.items() if isinstance(v, (str, int, float, np.number))}
    ds = da.to_dataset(name="data")
    with atomic_write(nc_path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    return Path(nc_path)


def write_brainscore_stimuli(stimuli: xr.Dataset, csv_path: str | os.PathLike,
                             zip_path: str | os.PathLike) -> tuple[Path, Path]:
    """Write a stimulus set in BrainIO's layout: a CSV (``stimulus_id``, ``filename``, metadata) and a PNG zip.

    Parameters
    ----------
    stimuli
        A stimulus set.
    csv_path, zip_path
        Destinations; both written atomically.

    Returns
    -------
    (pathlib.Path, pathlib.Path)

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, data
    >>> s = data.stimulus_set(np.zeros((1, 4, 4)))
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> c, z = data.write_brainscore_stimuli(s, d / "s.csv", d / "s.zip")
    >>> c.read_text().splitlines()[0]
    'stimulus_id,filename'
    """
    import imageio.v3 as iio

    validate_stimuli(stimuli)
    csv_path = check_path("csv_path", csv_path)
    zip_path = check_path("zip_path", zip_path)
    ids = [str(i) for i in stimuli["stimulus_id"].values]
    filenames = [f"{i}.png" for i in ids]
    meta = {name: c.values for name, c in stimuli.coords.items()
            if c.dims == ("stimulus_id",) and name not in ("stimulus_id", "filename")}
    with atomic_write(zip_path) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            for fname, img in zip(filenames, np.asarray(stimuli["image"].values)):
                buf = io.BytesIO()
                iio.imwrite(buf, np.round(img * 255).astype(np.uint8), extension=".png")
                zf.writestr(fname, buf.getvalue())
    with atomic_write(csv_path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["stimulus_id", "filename", *meta])
            for i, (sid, fname) in enumerate(zip(ids, filenames)):
                w.writerow([sid, fname, *[meta[k][i] for k in meta]])
    return Path(csv_path), Path(zip_path)
