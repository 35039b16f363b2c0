"""The main job's config: its schema (one ``data.Config`` per component), presets, the root seed and the checks
of :func:`validate_pipeline_config` that need files or hardware."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import data
import decoding
import lcl
from data._checks import check_instance

from ._predictivity import PredictivityConfig, validate_predictivity_config
from ._simulated import validate_simulated_config
from ._step_configs import GeometryConfig, JobsConfig, ModulationConfig, NeuralDataConfig, _integer
from ._texture_config import TextureStimuliConfig, validate_texture_config

__all__ = [
    "MODELS",
    "STAGES",
    "PipelineConfig",
    "validate_pipeline_config",
]

# Model name -> how it is made. LCL variants are changes to the LCL config (ablations as config, not code copies).
MODELS: dict[str, dict[str, Any] | None] = {
    "lcl": {},                                           # layerwise, deformation matched to each stage's RF
    "lcl_fixed": {"deform": {"matching": "fixed"}},      # ablation: the same amplitude for both stages
    "lcl_end_to_end": {"train": {"mode": "end_to_end"}},  # ablation: both stages trained through the stage-2 loss
    "untrained": None,                                   # the same architecture at its random initialisation
}
STAGES = ("stage1", "stage2")

#: Devices the main job accepts: the CPU, the current CUDA device or CUDA device N.
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")

#: Fields that the main job sets in every component from its own top-level ``seed`` and ``device``.
_RUN_FIELDS = ("seed", "device")


def _default_lcl() -> lcl.LCLConfig:
    return lcl.LCLConfig.preset("demo")


def _default_decoding() -> decoding.StudyConfig:
    return decoding.StudyConfig.preset("demo")


def _default_recognition() -> lcl.RecognitionConfig:
    return lcl.RecognitionConfig.preset("demo")


def _default_predictivity() -> PredictivityConfig:
    # The demo has 36 stimuli: Brain-Score's PLS-25 with 90 % training would nearly interpolate its 32 training
    # stimuli and test on 4; 10 components and 80 % training are the embedded default (Brain-Score's values
    # remain PredictivityConfig's defaults for real data).
    return PredictivityConfig(n_components=10, train_size=0.8)


#: The components of a :class:`PipelineConfig` and their classes (the TOML tables).
_COMPONENTS = (("lcl", lcl.LCLConfig), ("stimuli", TextureStimuliConfig), ("neural", NeuralDataConfig),
               ("modulation", ModulationConfig), ("predictivity", PredictivityConfig),
               ("geometry", GeometryConfig), ("decoding", decoding.StudyConfig),
               ("recognition", lcl.RecognitionConfig), ("jobs", JobsConfig))


def _run_fields(config: Any, where: str) -> list[tuple[str, Any, Any]]:
    """``(place, value, default)`` of every ``seed``/``device`` field in the nested config dataclass ``config``
    whose value differs from its class default."""
    found = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            found += _run_fields(value, f"{where}.{f.name}")
        elif f.name in _RUN_FIELDS and f.default is not dataclasses.MISSING and value != f.default:
            found.append((f"{where}.{f.name}", value, f.default))
    return found


def _tiny() -> PipelineConfig:
    """The seconds-scale preset of tests and smoke runs (``configs/pipeline_tiny.toml``)."""
    demo = PipelineConfig()
    return demo.replace(
        models=("lcl", "untrained"),
        lcl=demo.lcl.replace(train={"steps": (5, 5), "batch_size": 8, "progress": False},
                             model={"stage1": {"channels": 8}, "stage2": {"channels": 8}}),
        stimuli={"families": ("brick", "grass", "gravel"), "n_samples": 2, "size": 64, "n_scales": 2, "max_iter": 2},
        neural={"simulated": {"n_v1": 10, "n_v2": 10, "n_repetitions": 4}},
        predictivity={"n_components": 2, "n_splits": 2, "train_size": 0.75, "ceiling_splits": 2},
        geometry={"n_t": 20, "cv": 2},
        decoding=decoding.StudyConfig.preset("tiny"),
        jobs={"executor": "debug"},
    )


@dataclasses.dataclass(frozen=True)
class PipelineConfig(data.Config):
    """The main job. TOML: top-level keys plus one table per component (``[lcl]``, ``[stimuli]``, ``[neural]``,
    ``[modulation]``, ``[predictivity]``, ``[geometry]``, ``[decoding]``, ``[recognition]`` with
    ``[recognition.backend]``, ``[jobs]``); a table changes only the keys it names of the embedded default (preset
    ``"demo"``).

    Seeds: ``seed`` is the run's one root seed. Every step's seed derives from it with :func:`data.derive_seed`:

    ============================  ========================================================================
    step                          seed
    ============================  ========================================================================
    stimulus synthesis            ``derive_seed(seed, "stimuli")`` (:attr:`TextureStimuliConfig.seed`)
    LCL training (every model)    ``derive_seed(seed, "lcl")`` (``lcl.seed``; the same for all models,
                                  so the ablations and the untrained control start from the same weights)
    simulated recording           ``derive_seed(seed, "neural")`` (:attr:`SimulatedRecordingConfig.seed`)
    decoding study                ``derive_seed(seed, "decoding")`` (``decoding.seed``, the study's root,
                                  from which it derives its split, crops, retina noise and enhancer)
    LCL-V2Net                     ``derive_seed(seed, "v2net")`` (``recognition.seed``)
    texture modulation bootstrap  ``derive_seed(seed, "modulation", label)`` (label e.g. ``lcl_stage2``)
    geometry                      ``derive_seed(seed, "geometry", label)`` (feature subsampling, capacity)
    ============================  ========================================================================

    The stimulus splits and repetition halves of neural predictivity keep Brain-Score's fixed ``random_state``
    (:attr:`PredictivityConfig.seed`, 1): they are part of the benchmark's protocol, not a random choice of the
    run. The components' own ``seed`` (and ``device``) fields are therefore not settable in the main job: a value
    other than the class default is rejected, naming the field.

    Parameters
    ----------
    seed
        The root seed, in [0, 2**32 - 1].
    device
        Torch device of the model training, the model recordings, the decoding study and LCL-V2Net: ``"cpu"``,
        ``"cuda"`` or ``"cuda:N"`` (checked to exist by :func:`validate_pipeline_config`).
    models
        Models to compare, from :data:`MODELS`.
    stages
        Model stages to record, from :data:`STAGES`.
    lcl
        LCL training (default ``lcl.LCLConfig.preset("demo")``); the ablations change it as :data:`MODELS` says.
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
        The decoding study (default ``decoding.StudyConfig.preset("demo")``; in TOML, ``preset = "paper"`` or
        ``"tiny"`` in ``[decoding]`` starts from another preset).
    run_decoding
        Run the decoding study.
    run_v2net
        Train LCL-V2Net (the frozen ``lcl`` front end + a ResNet-style back end) and its baselines for recognition
        and evaluate them under corruptions (off in the embedded default: several minutes on a CPU).
    recognition
        LCL-V2Net task, training and back end (default ``lcl.RecognitionConfig.preset("demo")``).
    jobs
        Executor settings.

    Raises
    ------
    TypeError
        On construction, for a ``seed`` that is not an integer, ``run_decoding``/``run_v2net`` that are not
        ``True``/``False``, ``models``/``stages`` that are not lists of names, components of the wrong class.
    ValueError
        On construction, for a ``seed`` outside [0, 2**32 - 1], an unknown model or stage, a bad ``device`` name,
        a component's ``seed``/``device`` set. Files and hardware are checked by :func:`validate_pipeline_config`.

    Examples
    --------
    >>> import analyses
    >>> cfg = analyses.PipelineConfig.preset("demo")
    >>> cfg.models
    ('lcl', 'lcl_fixed', 'lcl_end_to_end', 'untrained')
    >>> analyses.PipelineConfig.preset("tiny", seed=3).seed
    3
    >>> analyses.PipelineConfig(device="gpu")
    Traceback (most recent call last):
    ...
    ValueError: device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'
    """

    seed: int = 0
    device: str = "cpu"
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
    recognition: lcl.RecognitionConfig = dataclasses.field(default_factory=_default_recognition)
    jobs: JobsConfig = dataclasses.field(default_factory=JobsConfig)

    PRESETS = {"demo": lambda: PipelineConfig(), "tiny": lambda: _tiny()}

    def validate(self) -> None:
        """The checks that need no file and no hardware (see :func:`validate_pipeline_config` for those)."""
        _integer("seed", self.seed, 0, 2 ** 32 - 1)
        if not isinstance(self.device, str):
            raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {self.device!r}")
        if not _DEVICE.fullmatch(self.device):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        for flag in ("run_decoding", "run_v2net"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        for name in ("models", "stages"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (tuple, list)) \
                    or not all(isinstance(v, str) for v in value):
                raise TypeError(f"{name} must be a list of names, got {value!r}")
        for name, cls in _COMPONENTS:
            check_instance(name, getattr(self, name), cls)
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
        if not self.models:
            raise ValueError("models is empty: name at least one of " + str(list(MODELS)))
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models lists a model twice: {list(self.models)}")
        if self.run_v2net and "lcl" not in self.models:
            raise ValueError("run_v2net needs the 'lcl' model (its frozen front end); add it to models")
        bad_stages = [s for s in self.stages if s not in STAGES]
        if bad_stages or not self.stages:
            raise ValueError(f"bad stage name(s) {bad_stages or '(none given)'}; choose from {list(STAGES)}")
        if self.stimuli.n_samples < 2:
            raise ValueError("stimuli.n_samples must be at least 2: the samples of a family are its manifold's points")
        for name, _ in _COMPONENTS:
            for place, value, default in _run_fields(getattr(self, name), name):
                if place == "predictivity.seed":
                    raise ValueError(f"predictivity.seed = {value!r}: the main job keeps Brain-Score's split seed "
                                     f"(random_state {default!r}) so that its scores are Brain-Score's; remove it")
                what = place.rsplit(".", 1)[1]
                raise ValueError(
                    f"{place} = {value!r}: the main job sets every component's {what} from its top-level "
                    f"`{what}` ({'data.derive_seed' if what == 'seed' else 'one device for all steps'}); "
                    f"remove it (or leave it at {default!r}) and set the top-level `{what}` instead")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, *, where: str = "") -> PipelineConfig:
        """Build from a (TOML) dict: each table changes only the keys it names of the embedded default
        (preset ``"demo"``); ``preset = "<name>"`` in ``[decoding]`` starts that table from a decoding preset."""
        if values is not None and not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of config keys, got {type(values).__name__}")
        values = dict(values or {})
        if isinstance(values.get("decoding"), Mapping):
            table = dict(values["decoding"])
            values["decoding"] = decoding.StudyConfig.preset(table.pop("preset", "demo"), **table)
        for name, _ in _COMPONENTS:
            if name in values and not isinstance(values[name], (Mapping, decoding.StudyConfig)):
                raise ValueError(f"{where}[{name}] must be a table, got {type(values[name]).__name__}")
        return data.update_config(cls(), values, where=where)


def validate_pipeline_config(config: PipelineConfig) -> PipelineConfig:
    """Check the whole job before any work: the config's own checks, then data files, the device and every
    component's checks that read files.

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
        Naming the problem: unknown model or stage, missing or unreadable data file, a device this machine lacks,
        or a component's own check.

    Examples
    --------
    >>> import analyses
    >>> analyses.validate_pipeline_config(analyses.PipelineConfig.preset("tiny")).models
    ('lcl', 'untrained')
    >>> analyses.validate_pipeline_config({"models": ["lcl"]})
    Traceback (most recent call last):
    ...
    TypeError: expected a PipelineConfig, got dict
    """
    if not isinstance(config, PipelineConfig):
        raise TypeError(f"expected a PipelineConfig, got {type(config).__name__}")
    config.validate()  # again: a config changed after construction (dataclasses.replace, object.__setattr__)
    data.validate_device(config.device, "device")
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
    neural = config.neural
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
        check_neural(read_neural(neural.path))
    else:
        raise ValueError(f"neural.source must be 'simulated' or 'file', got {neural.source!r}")
    return config


def read_neural(path: str | Path) -> xr.DataArray:
    """An assembly file written by data.save, or a Brain-Score netCDF."""
    try:
        obj = data.load(path)
    except Exception as exc:  # noqa: BLE001 - reported with the file name
        raise ValueError(f"cannot read neural data file {path}: {exc}") from exc
    if isinstance(obj, xr.Dataset):
        return data.from_brainscore(path)
    return data.validate_assembly(obj)


def check_neural(assembly: xr.DataArray) -> None:
    """Raise unless the neural assembly has the FreemanZiemba2013 coordinates the job groups by."""
    missing = [c for c in ("texture_family", "texture_type", "repetition") if c not in assembly.coords]
    if missing:
        raise ValueError(f"the neural assembly lacks coordinate(s) {missing} (FreemanZiemba2013 names)")
