"""The configs of a decoding study (one frozen :class:`data.Config` per component) and its named presets.

Seeds: :attr:`StudyConfig.seed` is the study's one root seed; no component carries a seed of its own. The code
derives every other seed from it with :func:`data.derive_seed` where it is used (:func:`decoding.run_study`,
:func:`decoding.make_datasets`)::

    seed                                   StudyConfig.seed (the root; provenance records it)
    |- derive_seed(seed, "split")          held-out photographs drawn when data.test_sources is empty
    |- derive_seed(seed, "crops", SET)     crop positions and flips of SET = "decoder", "enhancer", "test"
    |- derive_seed(seed, "retina", SET)    Poisson spike noise of each set
    |- derive_seed(seed, "pointwise")      pixel pairs the point-wise nonlinearity is fitted on
    |- derive_seed(seed, "enhancer", "weights")   initial enhancer weights
    '- derive_seed(seed, "enhancer", "batches")   every epoch's order, crops and flips (train_enhancer's seed)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import data
from data import LR_SCALINGS
from data._checks import check_seed

from ._retina_config import MosaicConfig, RetinaConfig, _positive, scaled_mosaics

__all__ = [
    "MosaicConfig",
    "RetinaConfig",
    "DecoderConfig",
    "EnhancerConfig",
    "EnhancerTrainConfig",
    "StudyDataConfig",
    "StudyConfig",
    "validate_study_config",
]


@dataclass(frozen=True)
class DecoderConfig(data.Config):
    """Ridge regression from spike counts (+ bias) to pixels, and the point-wise nonlinearity fitted after it.

    Parameters
    ----------
    alpha
        Ridge penalty relative to the mean eigenvalue of the centred count covariance
        (``lambda = alpha * trace(G) / n_cells``); ``0`` gives the minimum-norm least-squares solution.
    chunk_size
        Samples per block when accumulating the normal equations (memory only; results do not depend on it).
    dtype
        ``"float32"`` (fast) or ``"float64"`` for the products that accumulate the normal equations; the solve
        is always in float64.
    pointwise_samples
        Pixel pairs used to fit the monotone point-wise nonlinearity (subsampled, seeded).

    Examples
    --------
    >>> from decoding import DecoderConfig
    >>> DecoderConfig(alpha=0.01).alpha
    0.01
    """

    alpha: float = 0.05
    chunk_size: int = 1024
    dtype: str = "float32"
    pointwise_samples: int = 500_000

    def validate(self) -> None:
        _positive("alpha", self.alpha, allow_zero=True)
        _positive("chunk_size", self.chunk_size, integer=True)
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        _positive("pointwise_samples", self.pointwise_samples, integer=True)


@dataclass(frozen=True)
class EnhancerConfig(data.Config):
    """The convolutional autoencoder that enhances linear reconstructions (Parthasarathy et al. 2017).

    Encoder: ``conv(c_i, k_i, stride s_i) -> batch norm -> ReLU`` for each layer; the decoder mirrors it with
    bilinear upsampling and convolutions; the last convolution maps to one channel without nonlinearity.

    Parameters
    ----------
    channels
        Encoder channels (paper: 64, 128, 256, 256).
    kernels
        Encoder kernel sizes (paper: 7, 5, 3, 3), odd.
    strides
        Encoder strides (1 or 2); inputs must be divisible by their product.
    width
        Multiplier on every channel count (1.0: the paper's network).
    residual
        Predict a correction added to the linear reconstruction (``True``) or the image itself.
    skips
        Add each encoder stage's output to the decoder stage of the same resolution (U-Net-style additive skip
        connections; not in the paper, which used a plain autoencoder).

    Examples
    --------
    >>> from decoding import EnhancerConfig
    >>> EnhancerConfig(width=0.25).scaled_channels
    (16, 32, 64, 64)
    """

    channels: tuple[int, ...] = (64, 128, 256, 256)
    kernels: tuple[int, ...] = (7, 5, 3, 3)
    strides: tuple[int, ...] = (2, 2, 2, 2)
    width: float = 1.0
    residual: bool = True
    skips: bool = False

    def validate(self) -> None:
        for name in ("channels", "kernels", "strides"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if not self.channels:
            raise ValueError("channels must not be empty")
        if not (len(self.channels) == len(self.kernels) == len(self.strides)):
            raise ValueError(
                f"channels, kernels and strides need equal lengths, got {len(self.channels)}, "
                f"{len(self.kernels)}, {len(self.strides)}"
            )
        for c in self.channels:
            _positive("channels", c, integer=True)
        for k in self.kernels:
            _positive("kernels", k, integer=True)
            if k % 2 == 0:
                raise ValueError(f"kernel sizes must be odd, got {self.kernels}")
        if any(s not in (1, 2) for s in self.strides):
            raise ValueError(f"strides must be 1 or 2, got {self.strides}")
        _positive("width", self.width)
        for name in ("residual", "skips"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")

    @property
    def scaled_channels(self) -> tuple[int, ...]:
        """Channel counts after the width multiplier (at least 1 each)."""
        return tuple(max(1, round(c * self.width)) for c in self.channels)

    @property
    def downsampling(self) -> int:
        """Product of the strides: image sides must be multiples of it."""
        return math.prod(self.strides)


@dataclass(frozen=True)
class EnhancerTrainConfig(data.Config):
    """Training of the enhancer: MSE loss, Adam, random sub-patches with flips, seeded per epoch.

    Parameters
    ----------
    epochs
        Passes over the training pairs.
    batch_size
        Pairs per step in each process: under ``torchrun`` the global batch is ``batch_size x processes`` (as in
        ``lcl``), and N processes compute what one process does with ``batch_size x N``.
    lr
        Adam learning rate (before ``lr_scaling``).
    lr_scaling
        How ``lr`` follows the global batch: ``"none"`` (used as given, the default), ``"linear"``
        (``lr * global / reference_batch``) or ``"sqrt"`` (``lr * sqrt(global / reference_batch)``).
    reference_batch
        The global batch at which ``lr`` was tuned (used by ``lr_scaling``).
    weight_decay
        Adam weight decay.
    patch_size
        Side of the random sub-patches cut from each (reconstruction, original) pair; ``0`` uses whole images.
    flips
        Random horizontal/vertical flips and transposes of each pair.
    schedule
        After the warm-up, a ``"cosine"`` decay of the learning rate over the remaining steps, or ``"constant"``
        (:func:`data.lr_factor`, the schedule of every trainer in the workbench).
    warmup_steps
        Linear warm-up of the learning rate over the first steps (0: none).
    grad_clip
        Largest global norm of the gradients (0: no clipping).
    checkpoint_every
        Write a checkpoint every this many epochs (and always after the last).
    precision
        ``"float32"`` or ``"bfloat16"`` (autocast of the forward pass; the loss and the weights stay float32).
        Meant for GPUs; allowed on a CPU, where it is usually slower unless the CPU has bfloat16 units.
    compile
        Run the training forward pass through ``torch.compile`` (needs a C++ compiler on a CPU, Triton on a GPU;
        the first steps are slow while it compiles).

    Examples
    --------
    >>> from decoding import EnhancerTrainConfig
    >>> EnhancerTrainConfig(epochs=2).batch_size
    16
    >>> EnhancerTrainConfig(precision="float16")
    Traceback (most recent call last):
    ...
    ValueError: precision must be 'float32' or 'bfloat16', got 'float16'
    """

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    patch_size: int = 64
    flips: bool = True
    schedule: str = "cosine"
    warmup_steps: int = 0
    checkpoint_every: int = 1
    lr_scaling: str = "none"
    reference_batch: int = 16
    precision: str = "float32"
    compile: bool = False
    grad_clip: float = 0.0

    def validate(self) -> None:
        _positive("epochs", self.epochs, integer=True)
        _positive("batch_size", self.batch_size, integer=True)
        _positive("lr", self.lr)
        if self.lr_scaling not in LR_SCALINGS:
            raise ValueError(f"lr_scaling must be one of {LR_SCALINGS}, got {self.lr_scaling!r}")
        _positive("reference_batch", self.reference_batch, integer=True)
        if self.precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be 'float32' or 'bfloat16', got {self.precision!r}")
        if not isinstance(self.compile, bool):
            raise TypeError(f"compile must be a bool, got {self.compile!r}")
        _positive("weight_decay", self.weight_decay, allow_zero=True)
        _positive("patch_size", self.patch_size, integer=True, allow_zero=True)
        if not isinstance(self.flips, bool):
            raise TypeError(f"flips must be a bool, got {self.flips!r}")
        _positive("warmup_steps", self.warmup_steps, integer=True, allow_zero=True)
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        _positive("checkpoint_every", self.checkpoint_every, integer=True)
        _positive("grad_clip", self.grad_clip, allow_zero=True)


@dataclass(frozen=True)
class StudyDataConfig(data.Config):
    """Images of a study: random crops of the bundled photographs (or of an image folder), split by photograph.

    The photographs (``data.natural_images(photo_size)``, or ``data.image_folder(image_folder, photo_size)``) are
    split first, then each subset is cropped, so no held-out photograph contributes to training.

    Parameters
    ----------
    photo_size
        Side to which each photograph is shrunk before cropping.
    n_decoder
        Training crops for the linear decoder.
    n_enhancer
        Training crops (fresh crops and fresh spikes) for the point-wise nonlinearity and the enhancer.
    n_test
        Test crops from the held-out photographs.
    test_sources
        Names of the held-out photographs; empty: ``n_test_sources`` drawn with a seed derived from
        :attr:`StudyConfig.seed`.
    n_test_sources
        Number of held-out photographs when ``test_sources`` is empty.
    flips
        Random flips/transposes of the training crops (augmentation).
    image_folder
        A folder of images to use instead of the bundled photographs (searched recursively; each file is one
        source photograph, named by its file stem; files smaller than ``photo_size`` are left out). Empty: the
        bundled photographs. That the folder exists is checked by :func:`decoding.validate_study_config`
        (entry points call it before any work), not on construction.
    max_images
        Read at most this many files of ``image_folder`` (sorted by path); 0: all.

    Examples
    --------
    >>> from decoding import StudyDataConfig
    >>> StudyDataConfig(test_sources=("camera", "moon")).test_sources
    ('camera', 'moon')
    """

    photo_size: int = 256
    n_decoder: int = 8000
    n_enhancer: int = 4000
    n_test: int = 500
    test_sources: tuple[str, ...] = ()
    n_test_sources: int = 4
    flips: bool = True
    image_folder: str = ""
    max_images: int = 0

    def validate(self) -> None:
        if isinstance(self.image_folder, os.PathLike):
            object.__setattr__(self, "image_folder", os.fspath(self.image_folder))
        if not isinstance(self.image_folder, str):
            raise TypeError(f"image_folder must be a path, got {self.image_folder!r}")
        if isinstance(self.max_images, bool) or not isinstance(self.max_images, int) or self.max_images < 0:
            raise ValueError(f"max_images must be an integer >= 0, got {self.max_images!r}")
        if isinstance(self.test_sources, list):
            object.__setattr__(self, "test_sources", tuple(self.test_sources))
        for name in ("photo_size", "n_decoder", "n_enhancer", "n_test", "n_test_sources"):
            _positive(name, getattr(self, name), integer=True)
        if not all(isinstance(s, str) for s in self.test_sources):
            raise TypeError(f"test_sources must be photograph names, got {self.test_sources!r}")
        if not isinstance(self.flips, bool):
            raise TypeError(f"flips must be a bool, got {self.flips!r}")


@dataclass(frozen=True)
class StudyConfig(data.Config):
    """Everything a decoding study needs: data, retina, decoders, enhancer and its training, and the root seed.

    Presets (:meth:`preset`; ``configs/`` holds none, the command line takes ``--preset``): ``"paper"`` (the
    paper's retina and autoencoder, GPU-scale training), ``"bench"`` (the paper's retina, a narrow autoencoder
    with skips; the CPU benchmark), ``"demo"`` (64 x 64 crops, about 2-3 minutes on 2 CPU cores) and ``"tiny"``
    (seconds; tests).

    Parameters
    ----------
    data, retina, decoder, enhancer, train
        Component configs.
    n_examples
        Test images whose reconstructions are stored in the results (for figures).
    batch_size
        Images per batch for simulation, decoding and enhancement at evaluation.
    seed
        The study's root seed: every random draw of the study derives from it (see the derivation tree in
        :mod:`decoding._config`).

    Raises
    ------
    TypeError, ValueError
        On construction, naming the field.

    Examples
    --------
    >>> from decoding import StudyConfig
    >>> StudyConfig().retina.n_cells
    5398
    >>> StudyConfig.presets()
    ['bench', 'demo', 'paper', 'tiny']
    >>> StudyConfig.preset("demo").retina.image_size
    64
    >>> StudyConfig.preset("bench", train={"epochs": 3}, seed=2).train.epochs
    3
    >>> StudyConfig.preset("paper").enhancer.scaled_channels
    (64, 128, 256, 256)
    """

    data: StudyDataConfig = field(default_factory=StudyDataConfig)
    retina: RetinaConfig = field(default_factory=RetinaConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    enhancer: EnhancerConfig = field(default_factory=EnhancerConfig)
    train: EnhancerTrainConfig = field(default_factory=EnhancerTrainConfig)
    n_examples: int = 6
    batch_size: int = 256
    seed: int = 0

    def validate(self) -> None:
        for name, cls in (("data", StudyDataConfig), ("retina", RetinaConfig), ("decoder", DecoderConfig),
                          ("enhancer", EnhancerConfig), ("train", EnhancerTrainConfig)):
            if not isinstance(getattr(self, name), cls):
                raise TypeError(f"{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}")
        _positive("n_examples", self.n_examples, integer=True)
        _positive("batch_size", self.batch_size, integer=True)
        check_seed("seed", self.seed)
        crop = self.retina.image_size
        if crop > self.data.photo_size:
            raise ValueError(f"retina image_size {crop} exceeds the photograph size {self.data.photo_size}")
        if self.train.patch_size > crop:
            raise ValueError(f"train.patch_size {self.train.patch_size} exceeds the image size {crop}")
        side = self.train.patch_size or crop
        if side % self.enhancer.downsampling or crop % self.enhancer.downsampling:
            raise ValueError(
                f"image size {crop} and training patch size {side} must be multiples of the enhancer's "
                f"downsampling factor {self.enhancer.downsampling}"
            )


def validate_study_config(config: StudyConfig) -> StudyConfig:
    """Check what a :class:`StudyConfig` cannot check on construction (the environment); return it unchanged.

    Entry points (:func:`run_study`, ``python -m decoding run``) call it before any work: ``data.image_folder``,
    when set, must be an existing folder. Everything else is validated when the config is built.

    Parameters
    ----------
    config
        The study.

    Returns
    -------
    StudyConfig

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`StudyConfig`.
    ValueError
        If ``data.image_folder`` names no folder.

    Examples
    --------
    >>> import decoding
    >>> decoding.validate_study_config(decoding.StudyConfig.preset("tiny")).data.photo_size
    64
    >>> decoding.validate_study_config(decoding.StudyConfig().replace(data={"image_folder": "/no/such"}))
    Traceback (most recent call last):
    ...
    ValueError: data.image_folder '/no/such' is not a directory
    """
    if not isinstance(config, StudyConfig):
        raise TypeError(f"config must be a StudyConfig, got {type(config).__name__}")
    folder = config.data.image_folder
    if folder and not Path(folder).expanduser().is_dir():
        raise ValueError(f"data.image_folder {folder!r} is not a directory")
    return config


def _paper() -> StudyConfig:
    # The paper's retina (5398 cells, 128 x 128 crops) and its autoencoder (64-128-256-256, no skips) trained on
    # whole crops: a GPU-scale run.
    return StudyConfig(
        data=StudyDataConfig(n_decoder=16000, n_enhancer=20000, n_test=500),
        decoder=DecoderConfig(alpha=0.3),
        enhancer=EnhancerConfig(),
        train=EnhancerTrainConfig(epochs=30, batch_size=32, patch_size=0, lr=1e-3),
    )


def _bench() -> StudyConfig:
    # The benchmark on 2 CPU cores: the paper's retina and crops, a narrow autoencoder with U-Net skips (ours)
    # trained on 64 x 64 patches.
    return StudyConfig(
        data=StudyDataConfig(n_decoder=8000, n_enhancer=8000, n_test=500),
        decoder=DecoderConfig(alpha=0.3),
        enhancer=EnhancerConfig(width=0.5, skips=True),
        train=EnhancerTrainConfig(epochs=4, batch_size=16, patch_size=64, lr=2e-3, warmup_steps=100),
    )


def _demo() -> StudyConfig:
    # The analyses demo: 64 x 64 crops and a retina with the same cell densities (1393 cells), the narrow
    # autoencoder with skips and a short training; about 2-3 minutes on 2 idle CPU cores.
    return StudyConfig(
        data=StudyDataConfig(photo_size=128, n_decoder=6000, n_enhancer=2000, n_test=300),
        retina=RetinaConfig(image_size=64, mosaics=scaled_mosaics(0.5)),
        decoder=DecoderConfig(alpha=0.3),
        enhancer=EnhancerConfig(width=0.25, skips=True),
        train=EnhancerTrainConfig(epochs=3, batch_size=16, patch_size=32, lr=2e-3, warmup_steps=50),
    )


def _tiny() -> StudyConfig:
    # Unit tests: seconds.
    return StudyConfig(
        data=StudyDataConfig(photo_size=64, n_decoder=400, n_enhancer=64, n_test=24, n_test_sources=3),
        retina=RetinaConfig(image_size=32, mosaics=scaled_mosaics(0.25)),
        decoder=DecoderConfig(alpha=0.3, pointwise_samples=20_000),
        enhancer=EnhancerConfig(width=0.125, channels=(64, 128), kernels=(5, 3), strides=(2, 2), skips=True),
        train=EnhancerTrainConfig(epochs=2, batch_size=8, patch_size=16, warmup_steps=2),
        n_examples=3,
    )


StudyConfig.PRESETS = {"paper": _paper, "bench": _bench, "demo": _demo, "tiny": _tiny}
