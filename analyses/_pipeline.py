"""The main job: train LCL models (and their ablations), compare them with (simulated or recorded) primate V1/V2
data, measure population geometry, run the decoding study, and write results, figures and a report.

Every study step is a module-level function run as a submitit job (:func:`analyses.run_jobs`): local processes by
default, a Slurm job array when configured. Each step writes its outputs atomically and is skipped when they
already exist, so an interrupted run resumes where it stopped (LCL training resumes from its checkpoint).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import data
import decoding
import geometry
import lcl

from ._figures import figure_style, plot_predictivity, plot_texture_modulation, plot_texture_stimuli, save_figure
from ._assemblies import RESPONSE_WINDOW_MS, average_repetitions, average_time
from ._jobs import EXECUTORS, JobStep, run_jobs
from ._modulation import READOUTS, record_units, texture_modulation
from ._predictivity import PredictivityConfig, neural_predictivity, validate_predictivity_config
from ._simulated import SimulatedRecordingConfig, simulated_recording, validate_simulated_config
from ._textures import TextureStimuliConfig, crop_to_stimulus, texture_stimuli, validate_texture_config
from data._checks import check_instance, check_path, check_str

__all__ = [
    "MODELS",
    "STAGES",
    "NeuralDataConfig",
    "GeometryConfig",
    "ModulationConfig",
    "JobsConfig",
    "PipelineConfig",
    "default_pipeline_config",
    "pipeline_config_from_dict",
    "validate_pipeline_config",
    "run",
    "plot",
    "write_report",
]

# Model name -> how it is made. LCL variants are changes to the LCL config (ablations as config, not code copies).
MODELS: dict[str, dict[str, Any] | None] = {
    "lcl": {},                                           # layerwise, deformation matched to each stage's RF
    "lcl_fixed": {"deform": {"matching": "fixed"}},      # ablation: the same amplitude for both stages
    "lcl_end_to_end": {"train": {"mode": "end_to_end"}},  # ablation: both stages trained through the stage-2 loss
    "untrained": None,                                   # the same architecture at its random initialisation
}
STAGES = ("stage1", "stage2")
PIXELS = "pixels"


@dataclasses.dataclass(frozen=True)
class NeuralDataConfig:
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
        Settings of the simulated recording.

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

    def __post_init__(self) -> None:
        for name in ("source", "path", "stimulus_csv", "stimulus_zip"):
            check_str(f"neural.{name}", getattr(self, name))
        check_instance("neural.simulated", self.simulated, SimulatedRecordingConfig)


@dataclasses.dataclass(frozen=True)
class GeometryConfig:
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

    def __post_init__(self) -> None:
        _number("geometry.kappa", self.kappa, low=0.0, high=10.0)
        _integer("geometry.n_t", self.n_t, 1, 100_000)
        _integer("geometry.cv", self.cv, 2, 100)
        _integer("geometry.max_features", self.max_features, 2, 1_000_000)
        if self.center_correlation not in ("remove", "keep"):
            raise ValueError(f"geometry.center_correlation must be 'remove' or 'keep', got {self.center_correlation!r}")


@dataclasses.dataclass(frozen=True)
class ModulationConfig:
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

    def __post_init__(self) -> None:
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
class JobsConfig:
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

    def __post_init__(self) -> None:
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


def _default_lcl() -> lcl.LCLConfig:
    return lcl.demo_config()


def _default_decoding() -> decoding.StudyConfig:
    return decoding.default_config("demo")


def _default_backend() -> lcl.BackEndConfig:
    return lcl.demo_recognition_config()[0]


def _default_recognition() -> lcl.RecognitionConfig:
    return lcl.demo_recognition_config()[1]


def _default_predictivity() -> PredictivityConfig:
    # The demo has 36 stimuli: Brain-Score's PLS-25 with 90 % training would nearly interpolate its 32 training
    # stimuli and test on 4; 10 components and 80 % training are the embedded default (Brain-Score's values
    # remain PredictivityConfig's defaults for real data).
    return PredictivityConfig(n_components=10, train_size=0.8)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """The main job. TOML: top-level keys plus one table per component (``[lcl]``, ``[stimuli]``, ``[neural]``,
    ``[predictivity]``, ``[geometry]``, ``[decoding]``, ``[jobs]``); a table changes only the keys it names.

    Parameters
    ----------
    seed
        Seed of the job's own random choices (feature subsampling).
    models
        Models to compare, from :data:`MODELS`.
    stages
        Model stages to record, from :data:`STAGES`.
    lcl
        LCL training (default :func:`lcl.demo_config`); the ablations change it as :data:`MODELS` says.
    stimuli
        Texture / noise stimuli.
    neural
        Primate data.
    modulation
        Texture modulation read-out and responsive-unit criterion.
    predictivity
        Neural predictivity.
    geometry
        Population geometry.
    decoding
        The decoding study (default ``decoding.default_config("demo")``; in TOML, ``preset = "paper"`` or
        ``"tiny"`` in ``[decoding]`` starts from another preset).
    run_decoding
        Run the decoding study.
    run_v2net
        Train LCL-V2Net (the frozen ``lcl`` front end + a ResNet-style back end) and its baselines for recognition
        and evaluate them under corruptions (off in the embedded default: several minutes on a CPU).
    backend, recognition
        LCL-V2Net back end and task (default :func:`lcl.demo_recognition_config`).
    jobs
        Executor settings.

    Raises
    ------
    TypeError
        On construction, for a ``seed`` that is not an integer, ``run_decoding``/``run_v2net`` that are not
        ``True``/``False``, ``models``/``stages`` that are not lists of names, components of the wrong class.
    ValueError
        On construction, for a ``seed`` outside [0, 2**32 - 1]. Names and files are checked by
        :func:`validate_pipeline_config`.

    Examples
    --------
    >>> import analyses
    >>> cfg = analyses.default_pipeline_config()
    >>> cfg.models
    ('lcl', 'lcl_fixed', 'lcl_end_to_end', 'untrained')
    """

    seed: int = 0
    models: tuple[str, ...] = ("lcl", "lcl_fixed", "lcl_end_to_end", "untrained")
    stages: tuple[str, ...] = STAGES
    lcl: lcl.LCLConfig = dataclasses.field(default_factory=_default_lcl)
    stimuli: TextureStimuliConfig = dataclasses.field(default_factory=TextureStimuliConfig)
    neural: NeuralDataConfig = dataclasses.field(default_factory=NeuralDataConfig)
    modulation: ModulationConfig = dataclasses.field(default_factory=ModulationConfig)
    predictivity: PredictivityConfig = dataclasses.field(default_factory=_default_predictivity)
    geometry: GeometryConfig = dataclasses.field(default_factory=GeometryConfig)
    decoding: decoding.StudyConfig = dataclasses.field(default_factory=_default_decoding)
    run_decoding: bool = True
    run_v2net: bool = False
    backend: lcl.BackEndConfig = dataclasses.field(default_factory=_default_backend)
    recognition: lcl.RecognitionConfig = dataclasses.field(default_factory=_default_recognition)
    jobs: JobsConfig = dataclasses.field(default_factory=JobsConfig)

    def __post_init__(self) -> None:
        # the field checks of validate_pipeline_config that need no file and no other component
        _integer("seed", self.seed, 0, 2 ** 32 - 1)
        for flag in ("run_decoding", "run_v2net"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        for name in ("models", "stages"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (tuple, list)) \
                    or not all(isinstance(v, str) for v in value):
                raise TypeError(f"{name} must be a list of names, got {value!r}")
        for name, cls in (("stimuli", TextureStimuliConfig), ("neural", NeuralDataConfig),
                          ("modulation", ModulationConfig), ("predictivity", PredictivityConfig),
                          ("geometry", GeometryConfig), ("decoding", decoding.StudyConfig), ("jobs", JobsConfig)):
            check_instance(name, getattr(self, name), cls)


def default_pipeline_config() -> PipelineConfig:
    """The embedded default: everything on the bundled images, sized to finish in minutes on 2 CPU cores.

    Returns
    -------
    PipelineConfig

    Examples
    --------
    >>> import analyses
    >>> analyses.default_pipeline_config().neural.source
    'simulated'
    """
    return PipelineConfig()


def pipeline_config_from_dict(values: Mapping[str, Any] | None) -> PipelineConfig:
    """Build a :class:`PipelineConfig` from a (TOML) dict: each table changes the embedded default's keys it names.

    Parameters
    ----------
    values
        Nested dict, e.g. ``{"models": ["lcl"], "lcl": {"train": {"steps": [100, 100]}}}``.

    Returns
    -------
    PipelineConfig

    Raises
    ------
    ValueError
        For unknown keys at any level (naming them).

    Examples
    --------
    >>> import analyses
    >>> cfg = analyses.pipeline_config_from_dict({"models": ["lcl"], "geometry": {"n_t": 50}})
    >>> cfg.models, cfg.geometry.n_t, cfg.geometry.kappa
    (('lcl',), 50, 0.0)
    >>> analyses.pipeline_config_from_dict({"modles": ["lcl"]})
    Traceback (most recent call last):
    ...
    ValueError: unknown config key(s) ['modles'] for PipelineConfig; valid keys: [...]
    """
    values = dict(values or {})
    base = default_pipeline_config()
    top = {f.name for f in dataclasses.fields(PipelineConfig)}
    unknown = sorted(set(values) - top)
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown} for PipelineConfig; valid keys: {sorted(top)}")
    changes: dict[str, Any] = {}
    for name, val in values.items():
        current = getattr(base, name)
        if not dataclasses.is_dataclass(current):
            changes[name] = tuple(val) if isinstance(val, list) else val
            continue
        if not isinstance(val, Mapping):
            raise ValueError(f"[{name}] must be a table, got {type(val).__name__}")
        if name == "decoding":
            val = dict(val)
            changes[name] = decoding.default_config(val.pop("preset", "demo"), **val)
        else:
            changes[name] = data.update_config(current, val, where=f"[{name}] ")
    return dataclasses.replace(base, **changes)


def validate_pipeline_config(config: PipelineConfig) -> PipelineConfig:
    """Check the whole job before any work: model and stage names, data files, executor, every component.

    Parameters
    ----------
    config
        The job.

    Returns
    -------
    PipelineConfig
        ``config`` unchanged.

    Raises
    ------
    ValueError
        Naming the problem: unknown model or stage, missing or unreadable data file, bad executor, or a
        component's own check.

    Examples
    --------
    >>> import dataclasses, analyses
    >>> bad = dataclasses.replace(analyses.default_pipeline_config(), models=("alexnet",))
    >>> analyses.validate_pipeline_config(bad)
    Traceback (most recent call last):
    ...
    ValueError: unknown model(s) ['alexnet']; choose from ['lcl', 'lcl_fixed', 'lcl_end_to_end', 'untrained']
    """
    if not isinstance(config, PipelineConfig):
        raise TypeError(f"expected a PipelineConfig, got {type(config).__name__}")
    _integer("seed", config.seed, 0, 2 ** 32 - 1)
    for flag in ("run_decoding", "run_v2net"):
        if not isinstance(getattr(config, flag), bool):
            raise TypeError(f"{flag} must be true or false, got {getattr(config, flag)!r}")
    for name in ("models", "stages"):
        value = getattr(config, name)
        if isinstance(value, str) or not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"{name} must be a list of names, got {value!r}")
    for name, cls in (("stimuli", TextureStimuliConfig), ("neural", NeuralDataConfig),
                      ("modulation", ModulationConfig), ("predictivity", PredictivityConfig),
                      ("geometry", GeometryConfig), ("decoding", decoding.StudyConfig), ("jobs", JobsConfig)):
        if not isinstance(getattr(config, name), cls):
            raise TypeError(f"{name} must be a {cls.__name__}, got {type(getattr(config, name)).__name__}")
    unknown = [m for m in config.models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    if not config.models:
        raise ValueError("models is empty: name at least one of " + str(list(MODELS)))
    if config.run_v2net and "lcl" not in config.models:
        raise ValueError("run_v2net needs the 'lcl' model (its frozen front end); add it to models")
    if len(set(config.models)) != len(config.models):
        raise ValueError(f"models lists a model twice: {list(config.models)}")
    bad_stages = [s for s in config.stages if s not in STAGES]
    if bad_stages or not config.stages:
        raise ValueError(f"bad stage name(s) {bad_stages or '(none given)'}; choose from {list(STAGES)}")
    lcl.validate_config(config.lcl)
    for name, changes in MODELS.items():
        if changes and name in config.models:
            lcl.validate_config(config.lcl.replace(**changes))
    validate_texture_config(config.stimuli)
    if not config.neural.stimulus_csv:  # synthesized: families x samples x {texture, noise}
        n_stimuli = len(config.stimuli.families) * config.stimuli.n_samples * 2
        validate_predictivity_config(config.predictivity, n_stimuli=n_stimuli)
    else:
        validate_predictivity_config(config.predictivity)
    if config.stimuli.n_samples < 2:
        raise ValueError("stimuli.n_samples must be at least 2: the samples of a family are its manifold's points")
    neural = config.neural
    for name in ("source", "path", "stimulus_csv", "stimulus_zip"):
        if not isinstance(getattr(neural, name), str):
            raise TypeError(f"neural.{name} must be a string, got {getattr(neural, name)!r}")
    if neural.source == "simulated":
        side = config.stimuli.image_size
        blank = data.stimulus_set(np.zeros((1, side, side)), degrees=config.stimuli.image_degrees)
        validate_simulated_config(neural.simulated, blank)
    elif neural.source == "file":
        if not neural.path:
            raise ValueError("neural.source = 'file' needs neural.path (an assembly .nc file)")
        if not Path(neural.path).is_file():
            raise ValueError(f"neural data file not found: {neural.path}")
        if bool(neural.stimulus_csv) != bool(neural.stimulus_zip):
            raise ValueError("give both neural.stimulus_csv and neural.stimulus_zip, or neither")
        for f in (neural.stimulus_csv, neural.stimulus_zip):
            if f and not Path(f).is_file():
                raise ValueError(f"stimulus file not found: {f}")
        _check_neural(_read_neural(neural.path))
    else:
        raise ValueError(f"neural.source must be 'simulated' or 'file', got {neural.source!r}")
    return config


# ----------------------------------------------------------------------------------------------- neural data
def _read_neural(path: str | Path) -> xr.DataArray:
    """An assembly file written by data.save, or a Brain-Score netCDF."""
    try:
        obj = data.load(path)
    except Exception as exc:  # noqa: BLE001 - reported with the file name
        raise ValueError(f"cannot read neural data file {path}: {exc}") from exc
    if isinstance(obj, xr.Dataset):
        return data.from_brainscore(path)
    return data.validate_assembly(obj)


def _check_neural(assembly: xr.DataArray) -> None:
    missing = [c for c in ("texture_family", "texture_type", "repetition") if c not in assembly.coords]
    if missing:
        raise ValueError(f"the neural assembly lacks coordinate(s) {missing} (FreemanZiemba2013 names)")


# ----------------------------------------------------------------------------------------------- job steps
def _threads(n: int) -> None:
    """Hold this job to ``n`` threads: torch's and the BLAS/OpenMP pools numpy and scikit-learn use.

    Jobs share the machine's cores; a BLAS pool of its own default size in every job oversubscribes them, and
    OpenBLAS's spinning threads then slow a job down many-fold (the simulated recording took 535 s instead of
    about 30 s in a demo run next to other busy processes).
    """
    import torch
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    torch.set_num_threads(n)
    threadpool_limits(limits=n)


def _model_config(config: PipelineConfig, name: str) -> lcl.LCLConfig:
    changes = MODELS[name]
    return config.lcl.replace(**changes) if changes else config.lcl


def step_train(config: PipelineConfig, name: str, out: str) -> str:
    """Job: train one LCL model (resuming from its checkpoint) or build the untrained control; returns its folder.

    Examples
    --------
    >>> import analyses._pipeline as p  # run through analyses.run  # doctest: +SKIP
    """
    _threads(config.jobs.threads_per_job)
    folder = Path(out) / "models" / name
    model_file = folder / "model.pt"
    if model_file.is_file():
        return str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if MODELS[name] is None:
        import torch

        # the weights training starts from, with the same data-driven input centring as a trained stage
        model = lcl.Trainer(config.lcl).center_inputs()
        with data.atomic_write(model_file) as tmp:
            torch.save({"model": model.state_dict(), "config": dataclasses.asdict(config.lcl),
                        "provenance": data.provenance(config.lcl, config.lcl.train.seed)}, tmp)
        return str(folder)
    cfg = _model_config(config, name)
    resume = (folder / "checkpoint.pt").is_file()
    lcl.train(cfg, folder, resume=resume)
    return str(folder)


def _load_model(folder: Path) -> Any:
    return lcl.load_model(folder)


def step_stimuli(config: PipelineConfig, out: str) -> str:
    """Job: the stimulus set (synthesized textures + noise, or the neural file's own stimuli); returns its path.

    Examples
    --------
    >>> import analyses._pipeline as p  # run through analyses.run  # doctest: +SKIP
    """
    _threads(config.jobs.threads_per_job)
    path = Path(out) / "results" / "stimuli.nc"
    if path.is_file():
        return str(path)
    if config.neural.stimulus_csv:
        stimuli = data.read_brainscore_stimuli(config.neural.stimulus_csv, config.neural.stimulus_zip)
    else:
        # The synthesis is the longest job of its phase: split its families over as many processes as the job
        # may use (a local run's job slots, a Slurm job's CPUs); the stimuli do not depend on it.
        j = config.jobs
        workers = j.slurm_cpus_per_task if j.executor == "slurm" else j.max_parallel
        stimuli = texture_stimuli(config.stimuli, cache_dir=Path(out) / "cache",
                                  workers=max(1, min(int(workers), len(config.stimuli.families))))
    data.save(stimuli, path, config=config.stimuli, seed=config.stimuli.seed)
    return str(path)


def step_decoding(config: PipelineConfig, out: str) -> str:
    """Job: the decoding study (retina -> linear -> point-wise / enhanced); returns its results file.

    Examples
    --------
    >>> import analyses._pipeline as p  # run through analyses.run  # doctest: +SKIP
    """
    _threads(config.jobs.threads_per_job)
    folder = Path(out) / "decoding"
    results = folder / "results.nc"
    if results.is_file():
        return str(results)
    decoding.run_study(config.decoding, out_dir=folder, resume=(folder / "enhancer.pt").is_file(), progress=True)
    return str(results)


def step_neural(config: PipelineConfig, out: str, stimuli_path: str) -> str:
    """Job: the primate recording for the stimuli (simulated, or read from the file); returns its path.

    Examples
    --------
    >>> import analyses._pipeline as p  # run through analyses.run  # doctest: +SKIP
    """
    _threads(config.jobs.threads_per_job)
    path = Path(out) / "results" / "neural.nc"
    if path.is_file():
        return str(path)
    stimuli = data.load(stimuli_path)
    if config.neural.source == "simulated":
        assembly = simulated_recording(stimuli, config.neural.simulated)
        cfg: Any = config.neural.simulated
        seed = config.neural.simulated.seed
    else:
        assembly = _read_neural(config.neural.path)
        missing = set(assembly["stimulus_id"].values.tolist()) - set(stimuli["stimulus_id"].values.tolist())
        if missing:
            raise ValueError(f"{len(missing)} neural stimulus_id(s) are not in the stimulus set, "
                             f"e.g. {sorted(missing)[:3]}")
        cfg, seed = config.neural, None
    data.save(assembly, path, config=cfg, seed=seed)
    return str(path)


def step_v2net(config: PipelineConfig, out: str) -> str:
    """Job: LCL-V2Net and its baselines under corruptions (lcl.corruption_benchmark); returns its results file.

    Examples
    --------
    >>> import analyses._pipeline as p  # run through analyses.run  # doctest: +SKIP
    """
    _threads(config.jobs.threads_per_job)
    folder = Path(out) / "v2net"
    results = folder / "corruptions.nc"
    if not results.is_file():
        lcl.corruption_benchmark(_load_model(Path(out) / "models" / "lcl"), config.backend, config.recognition, folder)
    return str(results)


def _subsample(assembly: xr.DataArray, max_features: int, seed: int) -> xr.DataArray:
    n = assembly.sizes["neuroid"]
    if n <= max_features:
        return assembly
    keep = np.sort(np.random.default_rng(seed).choice(n, size=max_features, replace=False))
    return assembly.isel(neuroid=keep)


def _geometry(assembly: xr.DataArray, config: PipelineConfig, label: str) -> xr.Dataset:
    """Capacity, radius, dimension, alignment and decodability of the texture-family manifolds."""
    tex = assembly.isel(presentation=np.flatnonzero(assembly["texture_type"].values == "texture"))
    tex = _subsample(tex, config.geometry.max_features, config.seed)
    g = config.geometry
    cap = geometry.capacity(tex, by="texture_family", kappa=g.kappa, n_t=g.n_t,
                            center_correlation=g.center_correlation, seed=config.seed)
    ali = geometry.alignment(tex, by="texture_family")
    dec = geometry.decodability(tex, by="texture_family", cv=min(g.cv, config.stimuli.n_samples))
    summary = {}
    for ds in (cap, ali, dec):
        for name, var in ds.data_vars.items():
            if var.ndim == 0:
                summary[name] = float(var)
    per_manifold = cap[[v for v in cap.data_vars if cap[v].dims == ("manifold",)]]
    out = per_manifold.assign({k: ((), v) for k, v in summary.items()})
    out.attrs = {"representation": label, "n_features": int(tex.sizes["neuroid"]),
                 "n_points": int(tex.sizes["presentation"])}
    return out


def step_analyze(config: PipelineConfig, out: str, name: str, stimuli_path: str, neural_path: str) -> list[str]:
    """Job: record one model's stages (or the pixels, or the neural data) and compute texture modulation,
    neural predictivity and geometry; returns the result files.

    Examples
    --------
    >>> import analyses._pipeline as p  # run through analyses.run  # doctest: +SKIP
    """
    _threads(config.jobs.threads_per_job)
    res = Path(out) / "results"
    stimuli = data.load(stimuli_path)
    neural = data.load(neural_path)
    files: list[str] = []
    mod = config.modulation.kwargs()
    if name == "neural":
        path = res / "modulation_neural.nc"
        if not path.is_file():
            data.save(texture_modulation(neural, seed=config.seed, **mod), path, config=config, seed=config.seed)
        files.append(str(path))
        # the same response window and repetition averaging as modulation and predictivity
        mean = average_repetitions(average_time(neural, RESPONSE_WINDOW_MS))
        order = mean["stimulus_id"].values.tolist()
        for region in np.unique(neural["region"].values).tolist():
            path = res / f"geometry_neural_{region}.nc"
            if not path.is_file():
                part = mean.isel(neuroid=np.flatnonzero(mean["region"].values == region))
                meta = stimuli.sel(stimulus_id=order)
                part = part.assign_coords(texture_family=("presentation", meta["texture_family"].values),
                                          texture_type=("presentation", meta["texture_type"].values))
                data.save(_geometry(part, config, f"neural {region}"), path, config=config.geometry,
                          seed=config.seed)
            files.append(str(path))
        return files
    # Texture modulation reads single units on the whole canvas (the stimulus in its grey field); predictivity
    # and geometry use every position of the stimulus window (the canvas around it is blank).
    window = crop_to_stimulus(stimuli)
    if name == PIXELS:
        imgs = window["image"].values.reshape(window.sizes["stimulus_id"], -1).astype(np.float64)
        meta = {c: ("presentation", window[c].values) for c in ("texture_family", "texture_type", "sample")
                if c in window.coords}
        n = imgs.shape[1]
        full = {PIXELS: data.assembly(imgs, stimulus_id=window["stimulus_id"].values,
                                      neuroid_id=[f"px{i}" for i in range(n)],
                                      region=("neuroid", np.full(n, PIXELS)), **meta)}
        units = full
    else:
        model = _load_model(Path(out) / "models" / name)
        stages = list(config.stages)
        units = record_units(model, stimuli, stages, readout=config.modulation.readout)
        full = data.record(model, window, layers=stages, batch_size=16, regions={s: s for s in stages},
                           progress=False)
    for stage, assembly in full.items():
        label = name if name == PIXELS else f"{name}_{stage}"
        targets = {
            res / f"modulation_{label}.nc": lambda u=units[stage]: texture_modulation(u, seed=config.seed, **mod),
            res / f"predictivity_{label}.nc": lambda a=assembly: neural_predictivity(a, neural, config.predictivity),
            res / f"geometry_{label}.nc": lambda a=assembly, lab=label: _geometry(a, config, lab),
        }
        for path, compute in targets.items():
            if not path.is_file():
                data.save(compute(), path, config=config, seed=config.seed)
            files.append(str(path))
    return files


# ----------------------------------------------------------------------------------------------- orchestration
def _to_dict(config: PipelineConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=list))


def _run_steps(steps: list[JobStep], config: PipelineConfig, out: Path, phase: str) -> list[Any]:
    j = config.jobs
    slurm: dict[str, Any] | None = None
    if j.executor == "slurm":
        slurm = {"slurm_cpus_per_task": j.slurm_cpus_per_task, "slurm_mem_gb": j.slurm_mem_gb}
        if j.slurm_partition:
            slurm["slurm_partition"] = j.slurm_partition
        if j.slurm_gpus_per_node:
            slurm["slurm_gpus_per_node"] = j.slurm_gpus_per_node
    print(f"[{phase}] {len(steps)} job(s) on executor {j.executor!r}: " + ", ".join(s.label for s in steps),
          flush=True)
    return run_jobs(steps, executor=j.executor, folder=out / "jobs" / phase, slurm_params=slurm,
                    timeout_min=j.timeout_min, max_parallel=j.max_parallel)


def run(config: PipelineConfig | None = None, out: str | os.PathLike = "outputs/demo") -> Path:
    """Run the main job; write results (netCDF/JSON), figures (PNG + PDF) and ``report.md`` into ``out``.

    Phase 1 (one job array): train each LCL model, make the stimuli, run the decoding study. Phase 2: the
    neural recording. Phase 3 (one job array): per model (and for the pixels and the neural data) record the
    stages, texture modulation, neural predictivity and geometry. Then figures and the report. Steps whose
    outputs exist are skipped, so re-running an interrupted job resumes it.

    Parameters
    ----------
    config
        The job (default: :func:`default_pipeline_config`, the embedded default).
    out
        Output folder.

    Returns
    -------
    pathlib.Path
        The output folder.

    Raises
    ------
    TypeError
        For an ``out`` that is not a path (str or ``os.PathLike``), a ``config`` that is not a
        :class:`PipelineConfig` or ``None``.
    ValueError
        From :func:`validate_pipeline_config`, before any work.

    Examples
    --------
    >>> import analyses
    >>> analyses.run(analyses.default_pipeline_config(), "outputs/demo")  # doctest: +SKIP
    """
    out = check_path("out", out)
    config = validate_pipeline_config(default_pipeline_config() if config is None else config)
    (out / "results").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with data.atomic_write(out / "config.json") as tmp:
        tmp.write_text(json.dumps({"config": _to_dict(config), **{k: v for k, v in data.provenance().items()
                                                                  if k != "config"}}, indent=2))
    o = str(out)
    timings: dict[str, float] = {}
    # The stimulus synthesis (one core, ~9 min for the protocol) is the longest job: start it first, so the
    # training jobs fill the other slots around it.
    phase1 = [JobStep(step_stimuli, (config, o), name="stimuli")]
    phase1 += [JobStep(step_train, (config, name, o), name=f"train {name}") for name in config.models]
    if config.run_decoding:
        phase1.append(JobStep(step_decoding, (config, o), name="decoding"))
    t = time.perf_counter()
    results = _run_steps(phase1, config, out, "phase1")
    timings["phase1_train_stimuli_decoding"] = time.perf_counter() - t
    stimuli_path = results[0]
    t = time.perf_counter()
    neural_path = step_neural(config, o, stimuli_path)
    timings["phase2_neural"] = time.perf_counter() - t
    phase3 = [JobStep(step_analyze, (config, o, name, stimuli_path, neural_path), name=f"analyze {name}")
              for name in (*config.models, PIXELS, "neural")]
    if config.run_v2net:
        phase3.append(JobStep(step_v2net, (config, o), name="v2net"))
    t = time.perf_counter()
    _run_steps(phase3, config, out, "phase3")
    timings["phase3_analyses"] = time.perf_counter() - t
    t = time.perf_counter()
    figures = plot(out)
    timings["figures"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    with data.atomic_write(out / "results" / "timings.json") as tmp:
        tmp.write_text(json.dumps(timings, indent=2))
    write_report(out)
    print(f"done in {timings['total']:.0f} s: {len(figures)} figure files; report: {out / 'report.md'}", flush=True)
    return out


# ----------------------------------------------------------------------------------------------- figures
def _labels(res: Path, kind: str) -> dict[str, Path]:
    return {p.stem[len(kind) + 1:]: p for p in sorted(res.glob(f"{kind}_*.nc"))}


def _plot_geometry(files: Mapping[str, Path], stem: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    labels = list(files)
    rows = [data.load(files[k]) for k in labels]
    metrics = [("capacity", "capacity $\\alpha_M$"), ("radius", "radius $R_M$"), ("dimension", "dimension $D_M$"),
               ("center_alignment", "center alignment"), ("accuracy", "decodability (accuracy)")]
    metrics = [(m, t) for m, t in metrics if all(m in r for r in rows)]
    with figure_style():
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 0.32 * len(labels) + 1.6),
                                 sharey=True, squeeze=False)
        y = np.arange(len(labels))
        for ax, (m, title) in zip(axes[0], metrics):
            vals = [float(r[m]) for r in rows]
            ax.barh(y, vals, color=["0.55" if "neural" in k or k == PIXELS else "C0" for k in labels])
            ax.set_title(title)
            ax.set_yticks(y, labels)
            ax.invert_yaxis()
        fig.suptitle("Texture-family manifolds (points: texture samples)")
        fig.tight_layout()
        written = save_figure(fig, stem)
        plt.close(fig)
    return written


def _plot_training(models: Path, stem: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    logs = {p.parent.name: p for p in sorted(models.glob("*/log.jsonl"))}
    if not logs:
        return []
    with figure_style():
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for name, path in logs.items():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            rows = [r for r in rows if "loss" in r]
            if not rows:
                continue
            key = "phase" if "phase" in rows[0] else None
            phases = list(dict.fromkeys(r.get(key, "") for r in rows)) if key else [""]
            offset = 0
            for ph in phases:
                part = [r["loss"] for r in rows if (r.get(key, "") if key else "") == ph]
                ax.plot(np.arange(offset, offset + len(part)), part, lw=1,
                        label=f"{name} {ph}".strip())
                offset += len(part)
        ax.set_xlabel("logged step")
        ax.set_ylabel("loss")
        ax.legend(fontsize=6)
        fig.tight_layout()
        written = save_figure(fig, stem)
        plt.close(fig)
    return written


def plot(results_dir: str | os.PathLike) -> list[Path]:
    """Re-draw every figure from the saved results in ``results_dir``: no training, synthesis or fitting.

    Parameters
    ----------
    results_dir
        A folder written by :func:`run`.

    Returns
    -------
    list of pathlib.Path
        The figure files written (PNG and PDF) under ``results_dir/figures``.

    Raises
    ------
    TypeError
        For a ``results_dir`` that is not a path (str or ``os.PathLike``).
    ValueError
        If the folder holds no results of :func:`run`.

    Examples
    --------
    >>> import analyses
    >>> analyses.plot("outputs/demo")  # doctest: +SKIP
    """
    out = check_path("results_dir", results_dir)
    res = out / "results"
    if not (res / "stimuli.nc").is_file():
        raise ValueError(f"{out} holds no results of analyses.run (missing results/stimuli.nc)")
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    written: list[Path] = []
    written += plot_texture_stimuli(res / "stimuli.nc", figs / "texture_stimuli")
    modulation = _labels(res, "modulation")
    if modulation:
        written += plot_texture_modulation({k: str(v) for k, v in modulation.items()}, figs / "texture_modulation")
    predictivity = _labels(res, "predictivity")
    if predictivity:
        written += plot_predictivity({k: str(v) for k, v in predictivity.items()}, figs / "predictivity")
    geometry_files = _labels(res, "geometry")
    if geometry_files:
        written += _plot_geometry(geometry_files, figs / "geometry")
    for folder in sorted((out / "models").glob("*")):
        if (folder / "model.pt").is_file():
            written += lcl.plot_filters(lcl.load_model(folder), figs / f"filters_{folder.name}",
                                        title=f"stage-1 filters: {folder.name}")
    written += _plot_training(out / "models", figs / "training_loss")
    if (out / "v2net" / "corruptions.nc").is_file():
        written += lcl.plot_corruptions(out / "v2net" / "corruptions.nc", figs / "v2net_corruptions")
    if (out / "decoding" / "results.nc").is_file():
        written += decoding.plot_reconstructions(out / "decoding" / "results.nc", figs / "decoding_reconstructions")
    return written


def _table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_report(results_dir: str | os.PathLike) -> Path:
    """Write ``report.md``: settings, summary tables and every figure of the results folder.

    Parameters
    ----------
    results_dir
        A folder written by :func:`run` (figures already drawn).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    TypeError
        For a ``results_dir`` that is not a path (str or ``os.PathLike``).
    ValueError
        If the folder holds no results of :func:`run` (no ``config.json``).

    Examples
    --------
    >>> import analyses
    >>> analyses.write_report("outputs/demo")  # doctest: +SKIP
    """
    out = check_path("results_dir", results_dir)
    if not (out / "config.json").is_file():
        raise ValueError(f"{out} holds no results of analyses.run (missing config.json)")
    res = out / "results"
    cfg = json.loads((out / "config.json").read_text())
    parts = [
        "# lcl-workbench report",
        "",
        f"lcl-workbench {cfg.get('lcl_workbench_version')} (git {cfg.get('git_commit')}), created "
        f"{cfg.get('created')}. Neural data: **{cfg['config']['neural']['source']}**"
        + (" (a simulated V1/V2 recording, not primate data)" if cfg['config']['neural']['source'] == "simulated"
           else f" ({cfg['config']['neural']['path']})") + ". Full settings: `config.json`.",
        "",
    ]
    mod = _labels(res, "modulation")
    if mod:
        rows = []
        for label, path in mod.items():
            ds = data.load(path)
            for region in ds["region"].values.tolist():
                r = ds.sel(region=region)
                ci = (f" [{float(r['region_ci_low']):+.3f}, {float(r['region_ci_high']):+.3f}]"
                      if "region_ci_low" in r and np.isfinite(float(r["region_ci_low"])) else "")
                rows.append([label, str(region), f"{float(r['region_mean']):+.3f}{ci}",
                             f"{float(r['region_median']):+.3f}",
                             f"{float(r['region_frac_positive']):.2f}" if "region_frac_positive" in r else "-",
                             f"{int(r['n_responsive'])}/{int(r['n_units'])}" if "n_units" in r else "-"])
        m = cfg["config"].get("modulation", {})
        parts += ["## Texture modulation (Freeman et al. 2013)", "",
                  f"Index (R_texture - R_noise) / (R_texture + R_noise) per unit, averaged over families. Model units: "
                  f"one per channel, read-out `{m.get('readout', 'center')}` (`center`: the unit whose receptive "
                  "field is centred on the stimulus). Only responsive units enter (peak at least "
                  f"{m.get('min_peak', 0.01)} of the region's largest and responses varying by at least "
                  f"{m.get('min_range', 0.01)} of the unit's peak); interval: 95 % bootstrap over units.", "",
                  _table(rows, ["representation", "region", "mean [95 % CI]", "median", "fraction > 0",
                                "responsive / units"]), ""]
    pred = _labels(res, "predictivity")
    if pred:
        rows = []
        for label, path in pred.items():
            ds = data.load(path)
            for region in ds["region"].values.tolist():
                r = ds.sel(region=region)
                rows.append([label, str(region), f"{float(r['raw']):.3f} ± {float(r['raw_sem']):.3f}",
                             f"{float(r['ceiling']):.3f}", f"{float(r['score']):.3f}",
                             f"{float(r['score_legacy']):.3f}"])
        parts += ["## Neural predictivity (PLS, Brain-Score convention)", "",
                  "raw r: held-out Pearson r, median over neuroids, mean ± s.e. over 10 stratified splits; "
                  "ceiling: split-half consistency over repetitions (Spearman-Brown); score = r² / ceiling "
                  "(Brain-Score's score since January 2026); legacy = (r / ceiling)² (Brain-Score up to 2.3.12).",
                  "", _table(rows, ["model", "region", "raw r", "ceiling", "score = r²/ceiling",
                                    "legacy = (r/ceiling)²"]), ""]
    geo = _labels(res, "geometry")
    if geo:
        rows = []
        for label, path in geo.items():
            ds = data.load(path)
            rows.append([label] + [f"{float(ds[m]):.3f}" if m in ds else "-"
                                   for m in ("capacity", "radius", "dimension", "accuracy")])
        parts += ["## Geometry of texture-family manifolds", "",
                  _table(rows, ["representation", "capacity", "radius", "dimension", "decodability"]), ""]
    if (out / "decoding" / "results.nc").is_file():
        parts += ["## Decoding images from retinal spikes (held-out photographs)", "", "```",
                  decoding.summary_table(decoding.load_results(out / "decoding" / "results.nc")), "```", ""]
    if (res / "timings.json").is_file():
        t = json.loads((res / "timings.json").read_text())
        parts += ["## Timings", "", _table([[k, f"{v:.1f} s"] for k, v in t.items()], ["step", "time"]), ""]
    parts += ["## Figures", ""]
    for png in sorted((out / "figures").glob("*.png")):
        parts += [f"### {png.stem.replace('_', ' ')}", "", f"![{png.stem}](figures/{png.name})",
                  f"([PDF](figures/{png.stem}.pdf))", ""]
    path = out / "report.md"
    with data.atomic_write(path) as tmp:
        tmp.write_text("\n".join(parts))
    return path
