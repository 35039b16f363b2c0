"""Natural images decoded from simulated retinal ganglion-cell spikes (after Parthasarathy et al., NeurIPS 2017).

A :class:`Retina` (ON/OFF parasol and midget mosaics, difference-of-Gaussians receptive fields, static
nonlinearity, Poisson counts) encodes images; a :class:`LinearDecoder` (closed-form ridge) reconstructs them; a
:class:`PointwiseNonlinearity` and a convolutional :class:`Enhancer` improve the linear reconstruction;
:mod:`decoding.metrics` scores them (MSE, PSNR, SSIM). :func:`run_study` runs it all on crops of the bundled
photographs split by photograph, :func:`plot_reconstructions` draws the figure, ``python -m decoding`` is the
command line.

Examples
--------
>>> import decoding
>>> cfg = decoding.StudyConfig.preset("demo")      # 64 x 64 crops, 1393 cells, a few minutes on a CPU
>>> results = decoding.run_study(cfg, out_dir="out/decoding")          # doctest: +SKIP
>>> decoding.plot_reconstructions(results, "out/decoding/reconstructions")  # doctest: +SKIP
"""

from . import metrics
from ._config import (
    DecoderConfig,
    EnhancerConfig,
    EnhancerTrainConfig,
    MosaicConfig,
    RetinaConfig,
    StudyConfig,
    StudyDataConfig,
    validate_study_config,
)
from ._enhancer import Enhancer, load_enhancer, train_enhancer
from ._linear import LinearDecoder, PointwiseNonlinearity, validate_counts
from ._plot import plot_reconstructions
from ._retina import Retina, as_images, validate_images
from ._study import (
    METHODS,
    evaluate,
    load_results,
    make_datasets,
    run_study,
    split_by_source,
    study_photographs,
    summary_table,
)
from .metrics import mse, psnr, ssim

__all__ = [
    # retina
    "Retina",
    "validate_images",
    "as_images",
    # decoders
    "LinearDecoder",
    "PointwiseNonlinearity",
    "validate_counts",
    "Enhancer",
    "train_enhancer",
    "load_enhancer",
    # metrics
    "metrics",
    "mse",
    "psnr",
    "ssim",
    # study
    "split_by_source",
    "study_photographs",
    "make_datasets",
    "evaluate",
    "run_study",
    "load_results",
    "summary_table",
    "validate_study_config",
    "plot_reconstructions",
    "METHODS",
    # configs
    "MosaicConfig",
    "RetinaConfig",
    "DecoderConfig",
    "EnhancerConfig",
    "EnhancerTrainConfig",
    "StudyDataConfig",
    "StudyConfig",
]
