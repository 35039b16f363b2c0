"""Config dataclasses from TOML files or dicts, with unknown keys rejected."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["config_from_dict", "load_toml"]

T = TypeVar("T")


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML file into a dict.

    Parameters
    ----------
    path
        A ``.toml`` file.

    Returns
    -------
    dict

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not valid TOML.

    Examples
    --------
    >>> import data, pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.toml"
    >>> _ = p.write_text("lr = 0.1\\n[stage]\\nn = 3\\n")
    >>> data.load_toml(p)
    {'lr': 0.1, 'stage': {'n': 3}}
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from exc


def config_from_dict(cls: type[T], values: dict[str, Any] | None, *, where: str = "") -> T:
    """Build the frozen config dataclass ``cls`` from a (nested) dict, rejecting unknown keys.

    Nested dataclass fields are built recursively from sub-dicts; lists become tuples where the field is a
    tuple. Validation is left to the dataclass's own ``__post_init__``.

    Parameters
    ----------
    cls
        A dataclass type.
    values
        Mapping of field names to values; missing fields take their defaults.
    where
        Prefix used in error messages (e.g. ``"[train]"``).

    Returns
    -------
    cls instance

    Raises
    ------
    ValueError
        Naming every unknown key and the valid ones.

    Examples
    --------
    >>> import dataclasses, data
    >>> @dataclasses.dataclass(frozen=True)
    ... class C:
    ...     lr: float = 0.1
    ...     sizes: tuple = (1, 2)
    >>> data.config_from_dict(C, {"sizes": [3, 4]})
    C(lr=0.1, sizes=(3, 4))
    >>> data.config_from_dict(C, {"lrr": 1})
    Traceback (most recent call last):
    ...
    ValueError: unknown config key(s) ['lrr'] for C; valid keys: ['lr', 'sizes']
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {unknown} for {where}{cls.__name__}; valid keys: {sorted(fields)}"
        )
    try:
        hints = typing.get_type_hints(cls)
    except NameError:  # string annotations naming classes local to a function: use the defaults' types
        hints = {}
    kwargs = {}
    for key, val in values.items():
        hint = hints.get(key)
        if hint is None:
            f = fields[key]
            default = f.default if f.default is not dataclasses.MISSING else None
            hint = type(default) if default is not None else None
        origin = typing.get_origin(hint)
        if dataclasses.is_dataclass(hint) and isinstance(val, dict):
            val = config_from_dict(hint, val, where=f"{where}{key}.")
        elif (hint is tuple or origin is tuple) and isinstance(val, list):
            val = tuple(val)
        kwargs[key] = val
    return cls(**kwargs)
