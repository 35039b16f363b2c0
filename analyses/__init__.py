"""Compare models with primate V1/V2 data: texture stimuli, simulated recordings, texture modulation, neural
predictivity (Brain-Score convention), batch jobs and publication figures."""

from ._texture_config import (LARGE_TEXTURE_FAMILIES, PROTOCOL_FAMILIES, TextureStimuliConfig, default_cache_dir,
                              validate_texture_config)
from ._texture_images import crop_to_stimulus, phase_randomize, portilla_simoncelli_loss, raised_cosine_aperture
from ._textures import texture_stimuli
from ._assemblies import RESPONSE_WINDOW_MS, average_repetitions, average_time
from ._figures import (
    plot_predictivity,
    plot_texture_modulation,
    plot_texture_stimuli,
)
from ._jobs import EXECUTORS, JobFailure, JobsFailedError, JobStep, run_jobs
from ._modulation import (READOUTS, bootstrap_mean_ci, modulation_index, record_units, responsive_units,
                          texture_modulation)
from ._consistency import brainscore_order, spearman_brown, split_half_ceiling
from ._predictivity import SCORE_CONVENTION, PredictivityConfig, neural_predictivity, validate_predictivity_config
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
from ._pipeline_config import MODELS, STAGES, PipelineConfig, validate_pipeline_config
from ._pipeline_figures import plot
from ._report import write_report
from ._run import run
from ._step_configs import GeometryConfig, JobsConfig, ModulationConfig, NeuralDataConfig

__all__ += [
    # the main job
    "PipelineConfig",
    "NeuralDataConfig",
    "GeometryConfig",
    "ModulationConfig",
    "JobsConfig",
    "MODELS",
    "STAGES",
    "validate_pipeline_config",
    "run",
    "plot",
    "write_report",
]
