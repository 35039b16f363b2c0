"""Config dataclasses from TOML files or dicts, with unknown keys rejected."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from pathlib import Path
from typing import Any, TypeVar

from ._checks import check_path, check_str

__all__ = ["config_from_dict", "load_toml", "update_config"]

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
    path = check_path("path", path)
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
    if values is not None and not isinstance(values, typing.Mapping):
        raise TypeError(f"values must be a mapping of field names to values, got {type(values).__name__}")
    where = check_str("where", where)
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


def update_config(config: T, changes: typing.Mapping[str, Any] | None, *, where: str = "") -> T:
    """A copy of the frozen config dataclass ``config`` with the fields named in ``changes`` replaced.

    A mapping given for a field that holds a config dataclass updates only the fields it names (recursively);
    any other value (a dict-valued field included) replaces the field whole. Lists become tuples where the
    field is a tuple, as in :func:`config_from_dict`; validation is the dataclass's own ``__post_init__``.

    Parameters
    ----------
    config
        A dataclass instance (typically frozen).
    changes
        Mapping of field names to new values or to nested mappings of changes.
    where
        Prefix used in error messages (e.g. ``"[train] "``).

    Returns
    -------
    A new instance of ``type(config)``; ``config`` is unchanged.

    Raises
    ------
    TypeError
        If ``config`` is not a dataclass instance.
    ValueError
        Naming every unknown key (at any depth) and the valid ones.

    Examples
    --------
    >>> import dataclasses, data
    >>> @dataclasses.dataclass(frozen=True)
    ... class Inner:
    ...     k: int = 1
    ...     m: int = 2
    >>> @dataclasses.dataclass(frozen=True)
    ... class Outer:
    ...     inner: Inner = Inner()
    ...     sizes: tuple = (1, 2)
    >>> data.update_config(Outer(), {"inner": {"k": 5}, "sizes": [3]})
    Outer(inner=Inner(k=5, m=2), sizes=(3,))
    >>> data.update_config(Outer(), {"inner": {"kk": 5}})
    Traceback (most recent call last):
    ...
    ValueError: unknown config key(s) ['kk'] for inner.Inner; valid keys: ['k', 'm']
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    if changes is not None and not isinstance(changes, typing.Mapping):
        raise TypeError(f"changes must be a mapping of field names to values, got {type(changes).__name__}")
    where = check_str("where", where)
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.init}
    changes = dict(changes or {})
    unknown = sorted(set(changes) - set(values))
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown} for {where}{type(config).__name__}; "
                         f"valid keys: {sorted(values)}")
    for key, val in changes.items():
        current = values[key]
        if isinstance(val, typing.Mapping) and dataclasses.is_dataclass(current):
            val = update_config(current, val, where=f"{where}{key}.")
        values[key] = val
    return config_from_dict(type(config), values, where=where)
