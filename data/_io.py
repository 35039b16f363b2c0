"""Files: atomic writes, netCDF4 (h5netcdf) save/load, provenance (version, git commit, config)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import os
import re
import socket
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ._checks import check_path, check_seed

__all__ = ["atomic_write", "save", "load", "provenance", "git_commit", "package_version"]

_KIND_ATTR = "lcl_workbench_type"

_log = logging.getLogger(__name__)

#: A temporary file whose writer cannot be shown to be dead (another host, a name without a pid, or a pid that
#: a new process may have reused) is stale only once it has not been modified for this many seconds.
STALE_TEMP_SECONDS = 3600.0

# Temporary names: ".NAME.HOST-PID-XXXXXXXX.tmp" (HOST: crc32 of the host name, 8 hex digits; PID: the writing
# process; XXXXXXXX: tempfile's random part). Names of earlier versions, ".NAME.XXXXXXXX.tmp", are recognised too.
_TEMP_TAIL = re.compile(r"(?:(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-)?[a-z0-9_]{8}\.tmp")


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
    seed = check_seed("seed", seed, none=True)
    config_json = _config_json(config)
    return {
        "lcl_workbench_version": package_version(),
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "config": config_json,
        "seed": -1 if seed is None else seed,
    }


def _host_tag() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a process we can ask about: treat as alive (never remove on its account)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists but belongs to another user
        return True
    return True


def _remove_stale_temps(path: Path) -> list[Path]:
    """Delete the temporary files that interrupted :func:`atomic_write` calls to ``path`` left behind.

    Only names of ``path``'s own temporary files are considered (``.NAME.HOST-PID-XXXXXXXX.tmp``, or
    ``.NAME.XXXXXXXX.tmp`` from earlier versions); other files, including other targets' temporary files, are
    never touched. One of them is stale, and removed, when

    - its name records this host and a process id that no longer exists (its writer died: killed, crashed), or
    - it has not been modified for ``STALE_TEMP_SECONDS`` (1 hour): this covers writers on another host
      sharing the folder (their pids mean nothing here), names without a pid, and pids that a later process
      has reused.

    A concurrent writer is therefore safe: on this host its process is alive, and on any host it keeps
    modifying its file while it writes (only a writer idle for an hour in the middle of a write would be
    taken for dead). Errors (a read-only folder, a file removed meanwhile by another process) are ignored.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    removed: list[Path] = []
    prefix = f".{path.name}."
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    host, now = _host_tag(), time.time()
    for tmp in candidates:
        m = _TEMP_TAIL.fullmatch(tmp.name[len(prefix):])
        if m is None:
            continue
        try:
            age = now - tmp.lstat().st_mtime
        except OSError:
            continue
        dead = m["host"] == host and m["pid"] is not None and not _pid_alive(int(m["pid"]))
        if dead or age > STALE_TEMP_SECONDS:
            try:
                tmp.unlink()
            except OSError:
                continue
            _log.info("removed the stale temporary file %s (%s)", tmp,
                      "its writer is no longer running" if dead else f"untouched for {age:.0f} s")
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``, on error delete it.

    Either the complete new file or the old one is at ``path``, never a partial file, even if the writer
    raises or the process dies mid-write.

    The temporary file is ``.NAME.HOST-PID-XXXXXXXX.tmp`` beside ``path`` (``HOST`` a hash of the host name,
    ``PID`` the writing process). A process killed mid-write cannot delete it; the next :func:`atomic_write`
    (so the next :func:`save`) or :func:`load` of the same ``path`` does, once it is stale: at once when its
    name records a process of this host that no longer runs, else after an hour without modification (the
    rule is safe for a concurrent writer to the same path, whose file is never taken; see
    ``data._io._remove_stale_temps``). Other paths' temporary files are never touched.

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
    path = check_path("path", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{_host_tag()}-{os.getpid()}-", suffix=".tmp",
                                    dir=path.parent)
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
    path = check_path("path", path)
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
    ValueError
        Naming ``path``, if it is not a readable netCDF4/HDF5 file (truncated, say, or not netCDF at all).

    Notes
    -----
    Stale temporary files that interrupted :func:`save` calls to ``path`` left beside it are removed first
    (see :func:`atomic_write`).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> import data
    >>> s = data.stimulus_set(np.zeros((1, 4, 4)))
    >>> p = data.save(s, pathlib.Path(tempfile.mkdtemp()) / "s.nc")
    >>> type(data.load(p)).__name__
    'Dataset'
    """
    path = check_path("path", path)
    _remove_stale_temps(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
    except (PermissionError, FileNotFoundError):
        raise  # their messages name the path already
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # h5py / h5netcdf / xarray on a damaged file
        raise ValueError(f"cannot read {path}: not a readable netCDF4/HDF5 file, truncated or damaged "
                         f"({type(exc).__name__}: {exc})") from exc
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
