"""Files: atomic writes, netCDF4 (h5netcdf) save/load, provenance (version, git commit, config)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["atomic_write", "save", "load", "provenance", "git_commit", "package_version"]

_KIND_ATTR = "lcl_workbench_type"


def package_version() -> str:
    """Installed version of ``lcl-workbench`` (``"unknown"`` when run from an uninstalled tree).

    Returns
    -------
    str

    Examples
    --------
    >>> import data
    >>> isinstance(data.package_version(), str)
    True
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lcl-workbench")
    except PackageNotFoundError:
        return "unknown"


def git_commit() -> str:
    """Git commit of the source tree this package runs from, with ``+dirty`` for local changes.

    Returns ``"unknown"`` outside a git checkout (e.g. an installed wheel).

    Returns
    -------
    str

    Examples
    --------
    >>> import data
    >>> isinstance(data.git_commit(), str)
    True
    """
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def _config_json(config: Any) -> str:
    if config is None:
        return "null"
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        payload = {"type": type(config).__qualname__, **dataclasses.asdict(config)}
    elif isinstance(config, dict):
        payload = config
    else:
        raise TypeError(f"config must be a dataclass instance or a dict, got {type(config).__name__}")
    return json.dumps(payload, sort_keys=True, default=str)


def provenance(config: Any = None, seed: int | None = None) -> dict[str, Any]:
    """Attributes that every saved file and checkpoint carries.

    Parameters
    ----------
    config
        A config dataclass instance or a dict; stored as JSON.
    seed
        The random seed of the run, if any.

    Returns
    -------
    dict
        ``lcl_workbench_version``, ``git_commit``, ``created`` (UTC ISO time), ``config`` (JSON) and ``seed``
        (``-1`` for none).

    Examples
    --------
    >>> import data
    >>> p = data.provenance({"lr": 0.1}, seed=3)
    >>> p["seed"], p["config"]
    (3, '{"lr": 0.1}')
    """
    return {
        "lcl_workbench_version": package_version(),
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": _config_json(config),
        "seed": -1 if seed is None else int(seed),
    }


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``, on error delete it.

    Either the complete new file or the old one is at ``path``, never a partial file, even if the writer
    raises or the process dies mid-write.

    Parameters
    ----------
    path
        Final destination. Its directory is created if needed.

    Yields
    ------
    pathlib.Path
        The temporary file to write.

    Examples
    --------
    >>> import data, pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> with data.atomic_write(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text()
    'hello'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _check_attrs(attrs: dict[str, Any], where: str) -> None:
    for key, val in attrs.items():
        ok = isinstance(val, (str, int, float, np.integer, np.floating)) and not isinstance(val, bool)
        if isinstance(val, (list, tuple, np.ndarray)):
            arr = np.asarray(val)
            ok = arr.ndim == 1 and (np.issubdtype(arr.dtype, np.number) or arr.dtype.kind == "U")
        if not ok:
            raise TypeError(
                f"attribute {key!r} of {where} is a {type(val).__name__}; netCDF attributes must be strings, "
                "numbers or 1-D arrays of them (encode dicts with json.dumps; bools as int)"
            )


def save(obj: xr.DataArray | xr.Dataset, path: str | os.PathLike, *, config: Any = None,
         seed: int | None = None) -> Path:
    """Write an assembly, stimulus set or results Dataset to netCDF4 (h5netcdf), atomically.

    The file opens with plain ``xarray.open_dataarray(path, engine="h5netcdf")`` (for a DataArray) or
    ``xarray.open_dataset`` and with ``h5py``. Provenance attributes (package version, git commit, time,
    ``config`` as JSON, ``seed``) are added; existing attributes are kept.

    Parameters
    ----------
    obj
        ``xarray.DataArray`` or ``xarray.Dataset``.
    path
        Destination (``.nc``).
    config
        Config dataclass or dict that made ``obj``.
    seed
        Seed of the run.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        For an object that is not an xarray object, or an attribute netCDF cannot hold.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> import data
    >>> a = data.assembly(np.eye(2), stimulus_id=["a", "b"], neuroid_id=["n0", "n1"])
    >>> p = data.save(a, pathlib.Path(tempfile.mkdtemp()) / "a.nc", seed=0)
    >>> bool((data.load(p) == a).all())
    True
    """
    if not isinstance(obj, (xr.DataArray, xr.Dataset)):
        raise TypeError(f"data.save takes an xarray DataArray or Dataset, got {type(obj).__name__}")
    obj = obj.copy(deep=False)
    obj.attrs = {**obj.attrs, **provenance(config, seed), _KIND_ATTR: type(obj).__name__}
    _check_attrs(obj.attrs, "the object")
    variables = [obj] if isinstance(obj, xr.DataArray) else list(obj.data_vars.values())
    for v in [*variables, *obj.coords.values()]:
        _check_attrs(v.attrs, f"variable {v.name!r}")
    with atomic_write(path) as tmp:
        obj.to_netcdf(tmp, engine="h5netcdf", invalid_netcdf=False)
    return Path(path)


def load(path: str | os.PathLike) -> xr.DataArray | xr.Dataset:
    """Read a file written by :func:`save` (or any netCDF4 file) fully into memory.

    Parameters
    ----------
    path
        A ``.nc`` file.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        A DataArray when the file was saved from one, else a Dataset.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> import data
    >>> s = data.stimulus_set(np.zeros((1, 4, 4)))
    >>> p = data.save(s, pathlib.Path(tempfile.mkdtemp()) / "s.nc")
    >>> type(data.load(p)).__name__
    'Dataset'
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        ds = ds.load()
    if len(ds.data_vars) == 1:
        (var,) = ds.data_vars.values()
        if var.attrs.get(_KIND_ATTR) == "DataArray":
            da = var.copy()
            da.attrs.pop(_KIND_ATTR)
            if da.name == "__xarray_dataarray_variable__":
                da.name = None
            return da
    ds.attrs.pop(_KIND_ATTR, None)
    return ds
