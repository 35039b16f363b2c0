"""The settings of the main job's measurement and execution steps: neural data source, geometry, texture
modulation read-out and job executor (each a ``data.Config``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

import data
from data._checks import check_instance, check_str

from ._jobs import EXECUTORS
from ._modulation import READOUTS
from ._simulated import SimulatedRecordingConfig

__all__ = ["NeuralDataConfig", "GeometryConfig", "ModulationConfig", "JobsConfig"]


def _integer(name: str, value: Any, low: int, high: int) -> None:
    """Raise naming ``name`` unless ``value`` is an int (not a bool) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if not low <= value <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value}")


def _number(name: str, value: Any, *, low: float, high: float, strict: bool = False) -> None:
    """Raise naming ``name`` unless ``value`` is a finite real number in [low, high] (``(low, high]`` if strict)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not np.isfinite(value) or value > high or value < low or (strict and value == low):
        raise ValueError(f"{name} must be a finite number in {'(' if strict else '['}{low}, {high}], got {value}")


@dataclasses.dataclass(frozen=True)
class NeuralDataConfig(data.Config):
    """Where the primate V1/V2 data come from.

    Parameters
    ----------
    source
        ``"simulated"`` (offline default: :func:`analyses.simulated_recording` on the texture stimuli),
        ``"file"`` (an assembly file: written by :func:`data.save`, or a Brain-Score netCDF such as
        ``assy_movshon_FreemanZiemba2013_public.nc`` read with :func:`data.from_brainscore`).
    path
        The assembly file, with ``source="file"``.
    stimulus_csv, stimulus_zip
        The file's Brain-Score stimulus set (CSV + zip). When given, models see these images instead of the
        synthesized textures; otherwise the file's ``stimulus_id`` must match the synthesized stimuli.
    simulated
        Settings of the simulated recording (in the main job its ``seed`` is derived from the job's root seed).

    Raises
    ------
    TypeError
        On construction, for a ``source``, ``path``, ``stimulus_csv`` or ``stimulus_zip`` that is not a string,
        a ``simulated`` that is not a :class:`SimulatedRecordingConfig`. The source's value and the files are
        checked by :func:`validate_pipeline_config`.

    Examples
    --------
    >>> import analyses
    >>> analyses.NeuralDataConfig().source
    'simulated'
    """

    source: str = "simulated"
    path: str = ""
    stimulus_csv: str = ""
    stimulus_zip: str = ""
    simulated: SimulatedRecordingConfig = dataclasses.field(default_factory=SimulatedRecordingConfig)

    def validate(self) -> None:
        for name in ("source", "path", "stimulus_csv", "stimulus_zip"):
            check_str(f"neural.{name}", getattr(self, name))
        check_instance("neural.simulated", self.simulated, SimulatedRecordingConfig)


@dataclasses.dataclass(frozen=True)
class GeometryConfig(data.Config):
    """Population geometry of texture-family manifolds (the texture samples of each family are its points).

    Parameters
    ----------
    kappa
        Margin of the mean-field capacity.
    n_t
        Gaussian samples per manifold.
    center_correlation
        ``"remove"`` or ``"keep"`` (see :func:`geometry.capacity`).
    cv
        Folds of the cross-validated decodability.
    max_features
        Representations with more features are subsampled to this many (seeded, without replacement), which
        keeps the cost bounded; capacity is insensitive to the ambient dimension once it exceeds the number of
        points.

    Examples
    --------
    >>> import analyses
    >>> analyses.GeometryConfig().n_t
    200
    """

    kappa: float = 0.0
    n_t: int = 200
    center_correlation: str = "remove"
    cv: int = 3
    max_features: int = 4000

    def validate(self) -> None:
        _number("geometry.kappa", self.kappa, low=0.0, high=10.0)
        _integer("geometry.n_t", self.n_t, 1, 100_000)
        _integer("geometry.cv", self.cv, 2, 100)
        _integer("geometry.max_features", self.max_features, 2, 1_000_000)
        if self.center_correlation not in ("remove", "keep"):
            raise ValueError(f"geometry.center_correlation must be 'remove' or 'keep', got {self.center_correlation!r}")


@dataclasses.dataclass(frozen=True)
class ModulationConfig(data.Config):
    """Texture modulation read-out (Freeman et al. 2013; Brain-Score's Marques2020 protocol).

    Parameters
    ----------
    readout
        Model units: ``"center"`` (one unit per channel, the one whose receptive field is centred on the
        stimulus) or ``"mean"`` (each channel averaged over space); see :func:`analyses.record_units`.
    min_peak, min_range
        Responsive-unit criterion (:func:`analyses.responsive_units`).
    n_boot
        Bootstrap draws for the intervals.

    Examples
    --------
    >>> import analyses
    >>> analyses.ModulationConfig().readout
    'center'
    """

    readout: str = "center"
    min_peak: float = 0.01
    min_range: float = 0.01
    n_boot: int = 2000

    def validate(self) -> None:
        if self.readout not in READOUTS:
            raise ValueError(f"modulation.readout must be one of {READOUTS}, got {self.readout!r}")
        for name in ("min_peak", "min_range"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ValueError(f"modulation.{name} must be a number in [0, 1), got {v!r}")
        if isinstance(self.n_boot, bool) or not isinstance(self.n_boot, int) or not 10 <= self.n_boot <= 100_000:
            raise ValueError(f"modulation.n_boot must be an integer in [10, 100000], got {self.n_boot!r}")

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`analyses.texture_modulation`."""
        return {"min_peak": self.min_peak, "min_range": self.min_range, "n_boot": self.n_boot}


@dataclasses.dataclass(frozen=True)
class JobsConfig(data.Config):
    """How study steps run.

    Parameters
    ----------
    executor
        ``"local"`` (submitit processes on this machine), ``"slurm"`` (a Slurm job array) or ``"debug"`` (in
        this process).
    max_parallel
        Jobs at once. The stimulus synthesis also splits its families over this many processes (``local`` and
        ``debug``; under Slurm over ``slurm_cpus_per_task``), so it uses the cores the training jobs leave idle.
    threads_per_job
        Torch threads in each job.
    timeout_min
        Time limit of each job.
    slurm_partition
        Slurm partition (``executor="slurm"``).
    slurm_gpus_per_node, slurm_cpus_per_task, slurm_mem_gb
        Slurm resources per job.

    Examples
    --------
    >>> import analyses
    >>> analyses.JobsConfig().executor
    'local'
    """

    executor: str = "local"
    max_parallel: int = 2
    threads_per_job: int = 1
    timeout_min: float = 60.0
    slurm_partition: str = ""
    slurm_gpus_per_node: int = 0
    slurm_cpus_per_task: int = 4
    slurm_mem_gb: int = 16

    def validate(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown jobs.executor {self.executor!r}; choose from {list(EXECUTORS)}")
        _integer("jobs.max_parallel", self.max_parallel, 1, 10_000)
        _integer("jobs.threads_per_job", self.threads_per_job, 1, 1024)
        _number("jobs.timeout_min", self.timeout_min, low=0.0, high=60.0 * 24 * 30, strict=True)
        if not isinstance(self.slurm_partition, str):
            raise TypeError(f"jobs.slurm_partition must be a string, got {self.slurm_partition!r}")
        _integer("jobs.slurm_gpus_per_node", self.slurm_gpus_per_node, 0, 64)
        _integer("jobs.slurm_cpus_per_task", self.slurm_cpus_per_task, 1, 1024)
        _integer("jobs.slurm_mem_gb", self.slurm_mem_gb, 1, 100_000)
