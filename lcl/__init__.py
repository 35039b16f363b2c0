"""Layerwise complexity-matched learning (LCL) of V1 and V2 stages (Parthasarathy, Hénaff, Simoncelli, TMLR 2024).

A two-stage model (:class:`V1V2`) is trained one stage at a time with a self-supervised objective
(:mod:`lcl.losses`): two views of each natural-image patch, made by smooth random deformations whose amplitude is
matched to the receptive field of the stage being trained (:func:`deform`, :class:`DeformConfig`), must give similar
pooled features while patches of other images give decorrelated ones. The trained front end feeds a ResNet-style
recognition back end (:class:`V2Net`) evaluated under image corruptions.

Command line: ``python -m lcl train --config CONFIG.toml --out DIR [--resume]``; ``python -m lcl --help``. A trained run
becomes a self-contained Brain-Score model plugin with :func:`export_brainscore` (``python -m lcl export-brainscore
RUN --out PLUGIN``).
"""

from . import losses
from ._config import ABLATIONS, DataConfig, LCLConfig, OptimConfig, TrainConfig, validate_config
from ._corrupt import CORRUPTIONS, corrupt
from ._recognition_config import FRONT_ENDS, BackEndConfig, RecognitionConfig
from ._v2net import BackEnd, PixelStem, V2Net, build_v2net
from ._recognition import CropTask, corruption_benchmark, evaluate_corruptions, plot_corruptions, train_v2net
from ._filters import orientation_selectivity, plot_filters, spatial_spread
from ._deform import (DeformConfig, deform, displacement_from_noise, noise_shape, random_displacement,
                      rms_displacement, warp)
from ._stream import FolderPatches, PatchStream, list_images, patch_stream
from ._model import ReceptiveField, Stage, V1V2, whitening_kernel
from ._model_config import ModelConfig, StageConfig
from ._train import Trainer, init_distributed, load_checkpoint, load_model, train
from ._export import export_brainscore

__all__ = [
    # model
    "V1V2",
    "Stage",
    "ModelConfig",
    "StageConfig",
    "ReceptiveField",
    "whitening_kernel",
    # deformations
    "DeformConfig",
    "deform",
    "random_displacement",
    "warp",
    "rms_displacement",
    "noise_shape",
    "displacement_from_noise",
    # losses (submodule of pure functions)
    "losses",
    # training
    "LCLConfig",
    "OptimConfig",
    "TrainConfig",
    "DataConfig",
    "validate_config",
    "ABLATIONS",
    "Trainer",
    "train",
    "load_model",
    "load_checkpoint",
    "init_distributed",
    # Brain-Score model plugin of a trained run
    "export_brainscore",
    # streaming a large image folder
    "list_images",
    "FolderPatches",
    "PatchStream",
    "patch_stream",
    # filters
    "orientation_selectivity",
    "spatial_spread",
    "plot_filters",
    # LCL-V2Net and corruptions
    "V2Net",
    "BackEnd",
    "PixelStem",
    "BackEndConfig",
    "RecognitionConfig",
    "FRONT_ENDS",
    "CropTask",
    "build_v2net",
    "train_v2net",
    "evaluate_corruptions",
    "corruption_benchmark",
    "plot_corruptions",
    "CORRUPTIONS",
    "corrupt",
]
