"""The shared abstraction: assemblies, stimulus sets, image sources, file IO and model recordings (and the training
core that the ``lcl`` and ``decoding`` trainers share: schedule, checkpoints, ``torch.distributed`` helpers).

An *assembly* is a plain ``xarray.DataArray`` with dims ``(presentation, neuroid[, time_bin])``; a *stimulus set*
is a plain ``xarray.Dataset`` with an ``image`` variable. Model activations and neural recordings are the same kind
of object, so every analysis in ``geometry``, ``decoding``, ``lcl`` and ``analyses`` takes either.
"""

from ._assembly import assembly, stimulus_set, validate_assembly, validate_stimuli
from ._brainscore import (from_brainscore, merge_stimulus_metadata, read_brainscore_stimuli, to_brainscore,
                          write_brainscore_stimuli)
from ._config import Config, config_from_dict, load_toml, update_config
from ._figures import FIGURE_STYLE, JOURNAL_WIDTHS, figure_style, save_figure
from ._seeds import derive_seed
from ._distributed import (LR_SCALINGS, init_distributed, process_device, rank_and_world, scaled_lr,
                           validate_device, wrap_ddp)
from ._images import IMAGE_EXTENSIONS, image_folder, natural_images, read_image, sample_patches, texture_images
from ._io import atomic_write, git_commit, load, package_version, provenance, save
from ._record import center_index, record, stimuli_to_tensor
from ._training import (CHECKPOINT_FORMAT, PRECISIONS, SCHEDULES, autocast, load_checkpoint, lr_factor,
                        optimizer_step, progress_bar, resume_state, save_checkpoint)

__all__ = [
    # assemblies and stimulus sets
    "assembly",
    "stimulus_set",
    "validate_assembly",
    "validate_stimuli",
    # files
    "save",
    "load",
    "atomic_write",
    "provenance",
    "git_commit",
    "package_version",
    "Config",
    "config_from_dict",
    "load_toml",
    "update_config",
    # seeds and figures
    "derive_seed",
    "save_figure",
    "figure_style",
    "FIGURE_STYLE",
    "JOURNAL_WIDTHS",
    # images
    "IMAGE_EXTENSIONS",
    "natural_images",
    "texture_images",
    "image_folder",
    "read_image",
    "sample_patches",
    # models
    "record",
    "center_index",
    "stimuli_to_tensor",
    # torch.distributed (torchrun) helpers shared by the trainers
    "init_distributed",
    "rank_and_world",
    "process_device",
    "validate_device",
    "scaled_lr",
    "LR_SCALINGS",
    # the training core of the three trainers: schedule, step, precision, DDP, progress, checkpoints
    "lr_factor",
    "optimizer_step",
    "autocast",
    "wrap_ddp",
    "progress_bar",
    "save_checkpoint",
    "load_checkpoint",
    "resume_state",
    "SCHEDULES",
    "PRECISIONS",
    "CHECKPOINT_FORMAT",
    # Brain-Score files
    "from_brainscore",
    "to_brainscore",
    "read_brainscore_stimuli",
    "write_brainscore_stimuli",
    "merge_stimulus_metadata",
]
