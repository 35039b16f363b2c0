"""Frozen config dataclasses, one per component, and the named presets of a decoding study."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import data
from data import LR_SCALINGS
from data._checks import check_seed, check_str

__all__ = [
    "MosaicConfig",
    "RetinaConfig",
    "DecoderConfig",
    "EnhancerConfig",
    "TrainConfig",
    "DataConfig",
    "StudyConfig",
    "default_config",
    "study_config_from_json",
    "PRESETS",
]

NONLINEARITIES = ("softplus", "exponential", "relu", "identity")
NOISES = ("poisson", "none")


def _positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> None:
    kind = "integer" if integer else "number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise TypeError(f"{name} must be a {kind}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


@dataclass(frozen=True)
class MosaicConfig:
    """One regular mosaic of one retinal ganglion-cell type.

    Parameters
    ----------
    name
        Cell type, e.g. ``"on_parasol"``; becomes the ``cell_type`` coordinate.
    grid
        Cells per side (the mosaic is ``grid x grid``).
    polarity
        ``+1`` for ON cells (excited by light increments), ``-1`` for OFF cells.
    center_sigma
        Standard deviation of the Gaussian centre, in units of the mosaic spacing.
    surround_sigma
        Standard deviation of the Gaussian surround, in units of the mosaic spacing.
    surround_weight
        Integrated strength of the surround relative to the centre (0: no surround, 1: balanced DoG).
    spacing
        Distance between neighbouring cells in pixels; ``None`` (default) tiles the whole image,
        ``image_size / grid``. A mosaic is centred on the image and must fit inside it.

    Examples
    --------
    >>> from decoding import MosaicConfig
    >>> MosaicConfig("on_midget", grid=43, polarity=1).center_sigma
    0.5
    """

    name: str
    grid: int
    polarity: int = 1
    center_sigma: float = 0.5
    surround_sigma: float = 1.5
    surround_weight: float = 0.55
    spacing: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"mosaic name must be a non-empty string, got {self.name!r}")
        _positive(f"mosaic {self.name!r} grid", self.grid, integer=True)
        if self.polarity not in (1, -1) or isinstance(self.polarity, bool):
            raise ValueError(f"mosaic {self.name!r} polarity must be +1 (ON) or -1 (OFF), got {self.polarity!r}")
        _positive(f"mosaic {self.name!r} center_sigma", self.center_sigma)
        _positive(f"mosaic {self.name!r} surround_sigma", self.surround_sigma)
        _positive(f"mosaic {self.name!r} surround_weight", self.surround_weight, allow_zero=True)
        if self.spacing is not None:
            _positive(f"mosaic {self.name!r} spacing", self.spacing)


def _default_mosaics() -> tuple[MosaicConfig, ...]:
    # Grids as in Parthasarathy et al. 2017 (5398 cells on 128 x 128). Centre sizes relative to spacing, surround
    # three times the centre with 0.55 of its strength (after Croner & Kaplan 1995, radius ratio shortened to keep
    # border effects small on 128-pixel images). These are our choices, not the paper's (which are unpublished).
    return (
        MosaicConfig("on_parasol", 26, +1, center_sigma=0.6, surround_sigma=1.8),
        MosaicConfig("off_parasol", 32, -1, center_sigma=0.6, surround_sigma=1.8),
        MosaicConfig("on_midget", 43, +1, center_sigma=0.5, surround_sigma=1.5),
        MosaicConfig("off_midget", 43, -1, center_sigma=0.5, surround_sigma=1.5),
    )


@dataclass(frozen=True)
class RetinaConfig:
    """A simulated retina: mosaics of difference-of-Gaussians cells, a static nonlinearity, spike noise.

    The expected spike count of a cell with receptive field ``k`` (centre minus surround, each a unit-volume
    Gaussian in pixel units) on image ``I`` is ``scale * f(gain * polarity * sum(k * (I - background)) + offset)``.

    Parameters
    ----------
    image_size
        Side of the square input images in pixels.
    mosaics
        The cell mosaics (default: ON/OFF parasol 26x26 and 32x32, ON/OFF midget 43x43 each).
    nonlinearity
        ``"softplus"`` (default), ``"exponential"``, ``"relu"`` or ``"identity"`` (a linear retina).
    gain, offset, scale
        Parameters of the nonlinearity (defaults give about 4.5 spikes per cell per natural image).
    background
        Luminance subtracted before filtering (mean of the adapting background).
    noise
        ``"poisson"`` spike counts or ``"none"`` (the expected counts themselves).
    seed
        Default seed of the spike noise.

    Examples
    --------
    >>> from decoding import RetinaConfig
    >>> cfg = RetinaConfig()
    >>> sum(m.grid ** 2 for m in cfg.mosaics)
    5398
    """

    image_size: int = 128
    mosaics: tuple[MosaicConfig, ...] = field(default_factory=_default_mosaics)
    nonlinearity: str = "softplus"
    gain: float = 12.0
    offset: float = 0.0
    scale: float = 5.0
    background: float = 0.5
    noise: str = "poisson"
    seed: int = 0

    def __post_init__(self) -> None:
        _positive("image_size", self.image_size, integer=True)
        mosaics = tuple(MosaicConfig(**m) if isinstance(m, dict) else m for m in self.mosaics)
        object.__setattr__(self, "mosaics", mosaics)
        if not mosaics:
            raise ValueError("a retina needs at least one mosaic")
        if not all(isinstance(m, MosaicConfig) for m in mosaics):
            raise TypeError("mosaics must be MosaicConfig instances (or dicts of their fields)")
        names = [m.name for m in mosaics]
        if len(set(names)) != len(names):
            raise ValueError(f"mosaic names must be unique, got {names}")
        for m in mosaics:
            spacing = self.image_size / m.grid if m.spacing is None else m.spacing
            extent = m.grid * spacing
            if m.grid > self.image_size or extent > self.image_size + 1e-9:
                raise ValueError(
                    f"mosaic {m.name!r} is larger than the image: {m.grid} cells x spacing {spacing:g} px = "
                    f"{extent:g} px (or more cells than pixels per side) on a {self.image_size} px image"
                )
        if self.nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {self.nonlinearity!r}")
        if self.noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, got {self.noise!r}")
        if self.noise == "poisson" and self.nonlinearity == "identity":
            raise ValueError("Poisson noise needs non-negative rates; use a rectifying nonlinearity or noise='none'")
        for name in ("gain", "offset", "scale", "background"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        _positive("scale", self.scale)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise TypeError(f"seed must be an integer, got {self.seed!r}")

    @property
    def n_cells(self) -> int:
        """Total number of cells over all mosaics."""
        return sum(m.grid ** 2 for m in self.mosaics)


@dataclass(frozen=True)
class DecoderConfig:
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

    def __post_init__(self) -> None:
        _positive("alpha", self.alpha, allow_zero=True)
        _positive("chunk_size", self.chunk_size, integer=True)
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        _positive("pointwise_samples", self.pointwise_samples, integer=True)


@dataclass(frozen=True)
class EnhancerConfig:
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

    def __post_init__(self) -> None:
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
class TrainConfig:
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
    seed
        Seed of the initial weights and of every epoch's order, crops and flips.
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
    >>> from decoding import TrainConfig
    >>> TrainConfig(epochs=2).batch_size
    16
    >>> TrainConfig(precision="float16")
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
    seed: int = 0
    checkpoint_every: int = 1
    lr_scaling: str = "none"
    reference_batch: int = 16
    precision: str = "float32"
    compile: bool = False
    grad_clip: float = 0.0

    def __post_init__(self) -> None:
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
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        _positive("checkpoint_every", self.checkpoint_every, integer=True)
        _positive("grad_clip", self.grad_clip, allow_zero=True)


@dataclass(frozen=True)
class DataConfig:
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
        Names of the held-out photographs; empty: ``n_test_sources`` drawn with ``seed``.
    n_test_sources
        Number of held-out photographs when ``test_sources`` is empty.
    flips
        Random flips/transposes of the training crops (augmentation).
    seed
        Seed of the split, the crops and the flips.
    image_folder
        A folder of images to use instead of the bundled photographs (searched recursively; each file is one
        source photograph, named by its file stem; files smaller than ``photo_size`` are left out). Empty: the
        bundled photographs.
    max_images
        Read at most this many files of ``image_folder`` (sorted by path); 0: all.

    Examples
    --------
    >>> from decoding import DataConfig
    >>> DataConfig(test_sources=("camera", "moon")).test_sources
    ('camera', 'moon')
    """

    photo_size: int = 256
    n_decoder: int = 8000
    n_enhancer: int = 4000
    n_test: int = 500
    test_sources: tuple[str, ...] = ()
    n_test_sources: int = 4
    flips: bool = True
    seed: int = 0
    image_folder: str = ""
    max_images: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.image_folder, Path):
            object.__setattr__(self, "image_folder", str(self.image_folder))
        if not isinstance(self.image_folder, str):
            raise TypeError(f"image_folder must be a path, got {self.image_folder!r}")
        if self.image_folder and not Path(self.image_folder).is_dir():
            raise ValueError(f"image_folder {self.image_folder!r} is not a directory")
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
        check_seed("seed", self.seed)


@dataclass(frozen=True)
class StudyConfig:
    """Everything a decoding study needs: data, retina, decoders, enhancer and its training.

    Parameters
    ----------
    data, retina, decoder, enhancer, train
        Component configs.
    n_examples
        Test images whose reconstructions are stored in the results (for figures).
    batch_size
        Images per batch for simulation, decoding and enhancement at evaluation.

    Examples
    --------
    >>> from decoding import StudyConfig
    >>> StudyConfig().retina.n_cells
    5398
    """

    data: DataConfig = field(default_factory=DataConfig)
    retina: RetinaConfig = field(default_factory=RetinaConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    enhancer: EnhancerConfig = field(default_factory=EnhancerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    n_examples: int = 6
    batch_size: int = 256

    def __post_init__(self) -> None:
        for name, cls in (("data", DataConfig), ("retina", RetinaConfig), ("decoder", DecoderConfig),
                          ("enhancer", EnhancerConfig), ("train", TrainConfig)):
            if not isinstance(getattr(self, name), cls):
                raise TypeError(f"{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}")
        _positive("n_examples", self.n_examples, integer=True)
        _positive("batch_size", self.batch_size, integer=True)
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


def _scaled_mosaics(factor: float) -> tuple[MosaicConfig, ...]:
    return tuple(dataclasses.replace(m, grid=max(1, round(m.grid * factor))) for m in _default_mosaics())


PRESETS: dict[str, dict[str, Any]] = {
    # The paper's retina (5398 cells, 128 x 128 crops) and its autoencoder (64-128-256-256, no skips) trained on
    # whole crops: a GPU-scale run.
    "paper": {
        "data": DataConfig(n_decoder=16000, n_enhancer=20000, n_test=500),
        "decoder": DecoderConfig(alpha=0.3),
        "enhancer": EnhancerConfig(),
        "train": TrainConfig(epochs=30, batch_size=32, patch_size=0, lr=1e-3),
    },
    # The benchmark on 2 CPU cores: the paper's retina and crops, a narrow autoencoder with U-Net skips (ours)
    # trained on 64 x 64 patches.
    "bench": {
        "data": DataConfig(n_decoder=8000, n_enhancer=8000, n_test=500),
        "decoder": DecoderConfig(alpha=0.3),
        "enhancer": EnhancerConfig(width=0.5, skips=True),
        "train": TrainConfig(epochs=4, batch_size=16, patch_size=64, lr=2e-3, warmup_steps=100),
    },
    # The analyses demo: 64 x 64 crops and a retina with the same cell densities (1393 cells), the narrow
    # autoencoder with skips and a short training; about 2-3 minutes on 2 idle CPU cores.
    "demo": {
        "data": DataConfig(photo_size=128, n_decoder=6000, n_enhancer=2000, n_test=300),
        "retina": RetinaConfig(image_size=64, mosaics=_scaled_mosaics(0.5)),
        "decoder": DecoderConfig(alpha=0.3),
        "enhancer": EnhancerConfig(width=0.25, skips=True),
        "train": TrainConfig(epochs=3, batch_size=16, patch_size=32, lr=2e-3, warmup_steps=50),
    },
    # Unit tests: seconds.
    "tiny": {
        "data": DataConfig(photo_size=64, n_decoder=400, n_enhancer=64, n_test=24, n_test_sources=3),
        "retina": RetinaConfig(image_size=32, mosaics=_scaled_mosaics(0.25)),
        "decoder": DecoderConfig(alpha=0.3, pointwise_samples=20_000),
        "enhancer": EnhancerConfig(width=0.125, channels=(64, 128), kernels=(5, 3), strides=(2, 2), skips=True),
        "train": TrainConfig(epochs=2, batch_size=8, patch_size=16, warmup_steps=2),
        "n_examples": 3,
    },
}


def default_config(preset: str = "demo", **overrides: Any) -> StudyConfig:
    """A named study configuration, optionally with parts replaced.

    Parameters
    ----------
    preset
        ``"paper"`` (the paper's retina and autoencoder, GPU-scale training), ``"bench"`` (the paper's retina,
        a narrow autoencoder with skips; the CPU benchmark), ``"demo"`` (64 x 64 crops, about 2-3 minutes on
        2 CPU cores) or ``"tiny"`` (seconds; tests).
    **overrides
        Fields of :class:`StudyConfig`: a component config replaces the preset's, a dict updates only the
        fields it names (e.g. ``train={"epochs": 1}``); unknown names raise.

    Returns
    -------
    StudyConfig

    Raises
    ------
    ValueError
        For an unknown preset or unknown field names.

    Examples
    --------
    >>> import decoding
    >>> decoding.default_config("demo").retina.image_size
    64
    >>> decoding.default_config("bench", train={"epochs": 3}).train.epochs
    3
    >>> decoding.default_config("paper").enhancer.scaled_channels
    (64, 128, 256, 256)
    """
    check_str("preset", preset)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    return data.update_config(StudyConfig(**PRESETS[preset]), overrides)


def study_config_from_json(text: str) -> StudyConfig:
    """Rebuild a :class:`StudyConfig` from the JSON stored in results and checkpoints (``attrs["config"]``).

    Parameters
    ----------
    text
        JSON of ``dataclasses.asdict(config)`` (a ``"type"`` key is ignored).

    Returns
    -------
    StudyConfig

    Raises
    ------
    TypeError
        If ``text`` is not a string.
    ValueError
        If it is not JSON of an object with the fields of a :class:`StudyConfig` (or a field is invalid).

    Examples
    --------
    >>> import json, dataclasses, decoding
    >>> cfg = decoding.default_config("tiny")
    >>> decoding.study_config_from_json(json.dumps(dataclasses.asdict(cfg))) == cfg
    True
    """
    import json

    check_str("text", text)
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"text is not valid JSON: {exc}") from None
    if not isinstance(values, dict) or not all(isinstance(v, dict) for k, v in values.items()
                                               if k in ("data", "retina", "decoder", "enhancer", "train")):
        raise ValueError("text must be the JSON of a StudyConfig (an object with data, retina, ... objects)")
    values.pop("type", None)
    parts = {"data": DataConfig, "retina": RetinaConfig, "decoder": DecoderConfig, "enhancer": EnhancerConfig,
             "train": TrainConfig}
    kwargs = {k: (parts[k](**v) if k in parts else v) for k, v in values.items()}
    return StudyConfig(**kwargs)
