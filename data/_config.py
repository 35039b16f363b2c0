"""Config dataclasses from TOML files or dicts, with unknown keys rejected."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from pathlib import Path
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from ._checks import check_path, check_str

__all__ = ["Config", "config_from_dict", "load_toml", "update_config"]

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


C = TypeVar("C", bound="Config")


class Config:
    """Base of every config of the workbench: a frozen dataclass validated once, with one way in and out.

    A component's config is ``@dataclasses.dataclass(frozen=True) class XConfig(data.Config)``. The convention,
    the same in every package:

    - **validation** happens in the constructor: ``__post_init__`` calls :meth:`validate`, which the subclass
      overrides to raise ``ValueError`` (or ``TypeError``) naming the field; no invalid config object exists.
      Checks that need the file system or hardware (a folder exists, a GPU is there) stay in the package's
      public ``validate_*`` function, which entry points call before heavy work.
    - **in**: ``XConfig(...)``, ``XConfig.from_dict(d)`` (unknown keys are an error), ``XConfig.load(path)`` (a
      TOML file, one table per nested config), ``XConfig.preset(name, **changes)``.
    - **out**: ``cfg.to_dict()`` (plain nested dict, what results files and checkpoints store) and
      ``cfg.replace(**changes)`` (nested tables merge; the copy is validated again).
    - **presets**: the class attribute ``PRESETS`` maps a name to a function returning the preset; the TOML files
      in ``configs/`` are tested equal to them.
    - **seeds**: a top-level config has one ``seed``, the root from which every other seed derives
      (:func:`data.derive_seed`).

    Examples
    --------
    >>> import dataclasses, data
    >>> @dataclasses.dataclass(frozen=True)
    ... class StepConfig(data.Config):
    ...     lr: float = 0.1
    ...     steps: int = 10
    ...     PRESETS = {"quick": lambda: StepConfig(steps=2)}
    ...     def validate(self):
    ...         if self.steps < 1:
    ...             raise ValueError(f"StepConfig.steps must be >= 1, got {self.steps}")
    >>> StepConfig.preset("quick", lr=0.5)
    StepConfig(lr=0.5, steps=2)
    >>> StepConfig.from_dict({"steps": 3}).to_dict()
    {'lr': 0.1, 'steps': 3}
    >>> StepConfig(steps=0)
    Traceback (most recent call last):
    ...
    ValueError: StepConfig.steps must be >= 1, got 0
    """

    PRESETS: ClassVar[Mapping[str, Callable[[], Any]]] = {}

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first invalid field (subclasses override).

        Examples
        --------
        >>> import dataclasses, data
        >>> @dataclasses.dataclass(frozen=True)
        ... class Rate(data.Config):
        ...     hz: float = 1.0
        ...     def validate(self):
        ...         if self.hz <= 0:
        ...             raise ValueError(f"Rate.hz must be > 0, got {self.hz}")
        >>> Rate(hz=-1)
        Traceback (most recent call last):
        ...
        ValueError: Rate.hz must be > 0, got -1
        """

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/TOML-friendly); :meth:`from_dict` inverts it.

        Examples
        --------
        >>> import dataclasses, data
        >>> @dataclasses.dataclass(frozen=True)
        ... class Rate(data.Config):
        ...     hz: float = 1.0
        >>> Rate().to_dict()
        {'hz': 1.0}
        """
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], values: Mapping[str, Any] | None, *, where: str = "") -> C:
        """Build from a nested dict (as read from TOML or a results file), rejecting unknown keys.

        Examples
        --------
        >>> import dataclasses, data
        >>> @dataclasses.dataclass(frozen=True)
        ... class Rate(data.Config):
        ...     hz: float = 1.0
        >>> Rate.from_dict({"hz": 2.0})
        Rate(hz=2.0)
        """
        return config_from_dict(cls, dict(values) if values is not None else None, where=where)

    @classmethod
    def load(cls: type[C], path: str | os.PathLike) -> C:
        """Build from a TOML file (one table per nested config), rejecting unknown keys.

        Examples
        --------
        >>> import dataclasses, data, pathlib, tempfile
        >>> @dataclasses.dataclass(frozen=True)
        ... class Rate(data.Config):
        ...     hz: float = 1.0
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "rate.toml"
        >>> _ = path.write_text("hz = 4.0\\n")
        >>> Rate.load(path)
        Rate(hz=4.0)
        """
        return cls.from_dict(load_toml(path), where=f"{Path(path).name}: ")

    def replace(self: C, **changes: Any) -> C:
        """A validated copy with some fields changed; a dict for a nested config changes only the keys it names.

        Examples
        --------
        >>> import dataclasses, data
        >>> @dataclasses.dataclass(frozen=True)
        ... class Rate(data.Config):
        ...     hz: float = 1.0
        ...     n: int = 2
        >>> Rate().replace(n=5)
        Rate(hz=1.0, n=5)
        """
        return update_config(self, changes)

    @classmethod
    def presets(cls) -> list[str]:
        """The names :meth:`preset` accepts.

        Examples
        --------
        >>> import dataclasses, data
        >>> @dataclasses.dataclass(frozen=True)
        ... class Rate(data.Config):
        ...     hz: float = 1.0
        ...     PRESETS = {"fast": lambda: Rate(hz=10.0)}
        >>> Rate.presets()
        ['fast']
        """
        return sorted(cls.PRESETS)

    @classmethod
    def preset(cls: type[C], name: str, **changes: Any) -> C:
        """The preset ``name`` (see :meth:`presets`), with ``changes`` applied as in :meth:`replace`.

        Examples
        --------
        >>> import dataclasses, data
        >>> @dataclasses.dataclass(frozen=True)
        ... class Rate(data.Config):
        ...     hz: float = 1.0
        ...     n: int = 2
        ...     PRESETS = {"fast": lambda: Rate(hz=10.0)}
        >>> Rate.preset("fast", n=3)
        Rate(hz=10.0, n=3)
        """
        if not isinstance(name, str) or name not in cls.PRESETS:
            raise ValueError(f"unknown {cls.__name__} preset {name!r}; known presets: {cls.presets()}")
        cfg = cls.PRESETS[name]()
        return cfg.replace(**changes) if changes else cfg
