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
]
