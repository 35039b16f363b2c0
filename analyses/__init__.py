"""Compare models with primate V1/V2 data: texture stimuli, simulated recordings, texture modulation, neural
predictivity (Brain-Score convention), batch jobs and publication figures."""

from ._textures import (
    LARGE_TEXTURE_FAMILIES,
    PROTOCOL_FAMILIES,
    crop_to_stimulus,
    TextureStimuliConfig,
    default_cache_dir,
    phase_randomize,
    portilla_simoncelli_loss,
    raised_cosine_aperture,
    texture_stimuli,
    validate_texture_config,
)
from ._assemblies import RESPONSE_WINDOW_MS, average_repetitions, average_time
from ._figures import (
    plot_predictivity,
    plot_texture_modulation,
    plot_texture_stimuli,
)
from ._jobs import EXECUTORS, JobFailure, JobsFailedError, JobStep, run_jobs
from ._modulation import (READOUTS, bootstrap_mean_ci, modulation_index, record_units, responsive_units,
                          texture_modulation)
from ._predictivity import (
    SCORE_CONVENTION,
    PredictivityConfig,
    brainscore_order,
    neural_predictivity,
    spearman_brown,
    split_half_ceiling,
    validate_predictivity_config,
)
from ._simulated import SimulatedRecordingConfig, simulated_recording, validate_simulated_config

__all__ = [
    # stimuli
    "TextureStimuliConfig",
    "texture_stimuli",
    "validate_texture_config",
    "phase_randomize",
    "raised_cosine_aperture",
    "portilla_simoncelli_loss",
    "default_cache_dir",
    "LARGE_TEXTURE_FAMILIES",
    "PROTOCOL_FAMILIES",
    "crop_to_stimulus",
    # simulated primate recording
    "SimulatedRecordingConfig",
    "simulated_recording",
    "validate_simulated_config",
    # texture modulation
    "texture_modulation",
    "modulation_index",
    "responsive_units",
    "bootstrap_mean_ci",
    "record_units",
    "READOUTS",
    # neural predictivity
    "PredictivityConfig",
    "neural_predictivity",
    "brainscore_order",
    "SCORE_CONVENTION",
    "split_half_ceiling",
    "spearman_brown",
    "validate_predictivity_config",
    # batch jobs
    "run_jobs",
    "JobStep",
    "JobFailure",
    "JobsFailedError",
    "EXECUTORS",
    # figures
    "plot_texture_modulation",
    "plot_predictivity",
    "plot_texture_stimuli",
    # assembly preprocessing
    "average_time",
    "average_repetitions",
    "RESPONSE_WINDOW_MS",
]
from ._pipeline import (
    MODELS,
    STAGES,
    GeometryConfig,
    JobsConfig,
    ModulationConfig,
    NeuralDataConfig,
    PipelineConfig,
    default_pipeline_config,
    pipeline_config_from_dict,
    plot,
    run,
    validate_pipeline_config,
    write_report,
)

__all__ += [
    # the main job
    "PipelineConfig",
    "NeuralDataConfig",
    "GeometryConfig",
    "ModulationConfig",
    "JobsConfig",
    "MODELS",
    "STAGES",
    "default_pipeline_config",
    "pipeline_config_from_dict",
    "validate_pipeline_config",
    "run",
    "plot",
    "write_report",
]
