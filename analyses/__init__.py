"""Compare models with primate V1/V2 data: texture stimuli, simulated recordings, texture modulation, neural
predictivity (Brain-Score convention), batch jobs and publication figures."""

from ._textures import (
    LARGE_TEXTURE_FAMILIES,
    TextureStimuliConfig,
    default_cache_dir,
    phase_randomize,
    portilla_simoncelli_loss,
    raised_cosine_aperture,
    texture_stimuli,
    validate_texture_config,
)
from ._assemblies import RESPONSE_WINDOW_MS, average_repetitions, average_time
from ._modulation import modulation_index, texture_modulation
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
    # simulated primate recording
    "SimulatedRecordingConfig",
    "simulated_recording",
    "validate_simulated_config",
    # texture modulation
    "texture_modulation",
    "modulation_index",
    # assembly preprocessing
    "average_time",
    "average_repetitions",
    "RESPONSE_WINDOW_MS",
]
