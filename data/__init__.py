"""The shared abstraction: assemblies, stimulus sets, image sources, file IO and model recordings.

An *assembly* is a plain ``xarray.DataArray`` with dims ``(presentation, neuroid[, time_bin])``; a *stimulus set*
is a plain ``xarray.Dataset`` with an ``image`` variable. Model activations and neural recordings are the same kind
of object, so every analysis in ``geometry``, ``decoding``, ``lcl`` and ``analyses`` takes either.
"""

from ._assembly import assembly, stimulus_set, validate_assembly, validate_stimuli
from ._config import config_from_dict, load_toml
from ._io import atomic_write, git_commit, load, package_version, provenance, save

__all__ = [
    "assembly",
    "stimulus_set",
    "validate_assembly",
    "validate_stimuli",
    "save",
    "load",
    "atomic_write",
    "provenance",
    "git_commit",
    "package_version",
    "config_from_dict",
    "load_toml",
]
