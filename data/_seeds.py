"""One root seed per run; every other seed is derived from it by name."""

from __future__ import annotations

import zlib

import numpy as np

from ._checks import check_seed

__all__ = ["derive_seed"]


def derive_seed(root: int, *names: str | int) -> int:
    """The seed of the component ``names`` of a run whose root seed is ``root``.

    Every config of the workbench has one ``seed`` (the root); the seeds of its parts (weights, data order,
    deformations, retina noise, splits ...) are ``derive_seed(root, "part", ...)``. Derivation goes through
    :class:`numpy.random.SeedSequence` with the names as spawn key (strings hashed by CRC-32), so derived seeds
    are independent streams, stable across platforms and Python versions, and distinct for distinct names.

    Parameters
    ----------
    root
        The run's root seed, an integer >= 0.
    *names
        The path of the component, strings or integers >= 0 (e.g. ``"retina", 2`` for the third image set).

    Returns
    -------
    int
        A seed in ``[0, 2**31)``; with no names, ``root`` itself.

    Raises
    ------
    ValueError
        If ``root`` or an integer name is negative, or a name is neither a string nor an integer.

    Examples
    --------
    >>> import data
    >>> data.derive_seed(0, "weights") == data.derive_seed(0, "weights")
    True
    >>> data.derive_seed(0, "weights") != data.derive_seed(0, "data")
    True
    >>> data.derive_seed(7)
    7
    """
    root = check_seed("root", root)
    if not names:
        return root
    key = []
    for name in names:
        if isinstance(name, str):
            key.append(zlib.crc32(name.encode()))
        elif isinstance(name, (int, np.integer)) and not isinstance(name, bool) and name >= 0:
            key.append(int(name))
        else:
            raise ValueError(f"seed names must be strings or integers >= 0, got {name!r}")
    return int(np.random.SeedSequence(root, spawn_key=tuple(key)).generate_state(1)[0] >> 1)
