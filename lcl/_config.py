"""Configs of an LCL training run: one frozen :class:`data.Config` per component, presets, and the run's checks.

Seeds: :attr:`LCLConfig.seed` is the run's one root seed; no component carries a seed of its own. The trainer
(:class:`lcl.Trainer`) derives the others with :func:`data.derive_seed` where it uses them::

    seed                                  LCLConfig.seed (the root; provenance records it)
    |- derive_seed(seed, "weights")       initial weights of both stages (torch's global generator)
    |- derive_seed(seed, "batches")       the training generator: in-memory patches and the deformations
    |- derive_seed(seed, "probe", salt)   probe patches (input means, silent-channel counts)
    '- derive_seed(seed, "stream")        the streaming loader's files order and patch positions
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import data
from data._checks import check_seed

from . import losses
from ._deform import DeformConfig
from ._model import V1V2
from ._model_config import ModelConfig, StageConfig

__all__ = ["OptimConfig", "DataConfig", "TrainConfig", "LCLConfig", "validate_config", "ABLATIONS",
           "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = data.IMAGE_EXTENSIONS  # the one list of readable image suffixes
_MODES = ("layerwise", "end_to_end")
_SOURCES = ("natural", "folder")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclasses.dataclass(frozen=True)
class OptimConfig(data.Config):
    """AdamW with linear warm-up and a cosine decay, restarted for each trained stage.

    Parameters
    ----------
    lr
        Peak learning rate (before ``lr_scaling``).
    lr_scaling
        How the learning rate follows the global batch (``batch_size`` x processes): ``"none"`` (use ``lr`` as
        is), ``"linear"`` (``lr * global / reference_batch``) or ``"sqrt"`` (``lr * sqrt(global /
        reference_batch)``, often better for Adam-type optimisers).
    reference_batch
        The global batch at which ``lr`` applies unscaled.
    weight_decay
        Decoupled weight decay of AdamW.
    betas
        Adam's moment coefficients.
    warmup_steps
        Steps of linear warm-up from 0 at the start of each stage.
    min_lr_ratio
        Learning rate at the end of the cosine, as a fraction of ``lr``.
    grad_clip
        Clip the global gradient norm to this value (0 = no clipping).

    Examples
    --------
    >>> import lcl
    >>> lcl.OptimConfig(lr=1e-3).lr
    0.001
    >>> lcl.OptimConfig(lr=0)
    Traceback (most recent call last):
    ...
    ValueError: OptimConfig.lr must be a positive number, got 0
    """

    lr: float = 5e-3
    lr_scaling: str = "none"
    reference_batch: int = 256
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 50
    min_lr_ratio: float = 0.0
    grad_clip: float = 0.0

    def validate(self) -> None:
        if not _is_num(self.lr) or self.lr <= 0:
            raise ValueError(f"OptimConfig.lr must be a positive number, got {self.lr!r}")
        if self.lr_scaling not in data.LR_SCALINGS:
            raise ValueError(f"OptimConfig.lr_scaling must be 'none', 'linear' or 'sqrt', got {self.lr_scaling!r}")
        if not _is_int(self.reference_batch) or self.reference_batch < 1:
            raise ValueError(f"OptimConfig.reference_batch must be a positive integer, got {self.reference_batch!r}")
        if not _is_num(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"OptimConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if len(self.betas) != 2 or not all(_is_num(b) and 0 <= b < 1 for b in self.betas):
            raise ValueError(f"OptimConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        if not _is_int(self.warmup_steps) or self.warmup_steps < 0:
            raise ValueError(f"OptimConfig.warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        if not _is_num(self.min_lr_ratio) or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"OptimConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if not _is_num(self.grad_clip) or self.grad_clip < 0:
            raise ValueError(f"OptimConfig.grad_clip must be >= 0 (0 = off), got {self.grad_clip!r}")

    def scaled_lr(self, global_batch: int) -> float:
        """Peak learning rate for ``global_batch`` patches per step (see ``lr_scaling``).

        Examples
        --------
        >>> import lcl
        >>> lcl.OptimConfig(lr=1e-3, lr_scaling="linear", reference_batch=128).scaled_lr(512)
        0.004
        """
        return data.scaled_lr(self.lr, global_batch, self.lr_scaling, self.reference_batch)

    def lr_factor(self, step: int, total: int) -> float:
        """Multiplier of ``lr`` at ``step`` (0-based) of a stage of ``total`` steps (:func:`data.lr_factor`)."""
        return data.lr_factor(step, total, warmup_steps=self.warmup_steps, min_lr_ratio=self.min_lr_ratio)


@dataclasses.dataclass(frozen=True)
class DataConfig(data.Config):
    """Where the training patches come from.

    Parameters
    ----------
    source
        ``"natural"``: the photographs bundled with the installed packages (``data.natural_images``, the
        embedded default); ``"folder"``: every image under ``folder`` (ImageNet layout works).
    folder
        Image folder for ``source="folder"``.
    image_size
        Images are centre-cropped and resized to this side before patches are cut.
    max_images
        Use at most this many images of the folder (0 = all).
    streaming
        Stream patches from the folder's files with worker processes instead of loading every image into
        memory (for large folders; ``source="folder"`` only).
    workers
        Worker processes of the streaming loader (0 = load in the training process).
    patches_per_image
        Streaming: patches cut from each image read before moving on (amortises decoding).

    Examples
    --------
    >>> import lcl
    >>> lcl.DataConfig().source
    'natural'
    >>> lcl.DataConfig(source="web")
    Traceback (most recent call last):
    ...
    ValueError: DataConfig.source must be one of ('natural', 'folder'), got 'web'
    """

    source: str = "natural"
    folder: str = ""
    image_size: int = 256
    max_images: int = 0
    streaming: bool = False
    workers: int = 0
    patches_per_image: int = 8

    def validate(self) -> None:
        if self.source not in _SOURCES:
            raise ValueError(f"DataConfig.source must be one of {_SOURCES}, got {self.source!r}")
        if isinstance(self.folder, os.PathLike):
            object.__setattr__(self, "folder", os.fspath(self.folder))
        if not isinstance(self.folder, str):
            raise TypeError(f"DataConfig.folder must be a path (str), got {self.folder!r:.60}")
        if self.source == "folder" and not self.folder:
            raise ValueError("DataConfig.folder must name an image folder when source='folder'")
        if self.source == "natural" and self.folder:
            raise ValueError("DataConfig.folder is set but source='natural'; set source='folder' to use it")
        if not _is_int(self.image_size) or self.image_size < 8:
            raise ValueError(f"DataConfig.image_size must be an integer >= 8, got {self.image_size!r}")
        if not _is_int(self.max_images) or self.max_images < 0:
            raise ValueError(f"DataConfig.max_images must be an integer >= 0 (0 = all), got {self.max_images!r}")
        if not isinstance(self.streaming, bool):
            raise ValueError(f"DataConfig.streaming must be a boolean, got {self.streaming!r}")
        if self.streaming and self.source != "folder":
            raise ValueError("DataConfig.streaming needs source='folder' (the bundled photographs fit in memory)")
        if not _is_int(self.workers) or self.workers < 0:
            raise ValueError(f"DataConfig.workers must be an integer >= 0, got {self.workers!r}")
        if self.workers and not self.streaming:
            raise ValueError("DataConfig.workers is only used with streaming=true")
        if not _is_int(self.patches_per_image) or self.patches_per_image < 1:
            raise ValueError(f"DataConfig.patches_per_image must be a positive integer, "
                             f"got {self.patches_per_image!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig(data.Config):
    """How the stages are trained.

    Parameters
    ----------
    mode
        ``"layerwise"`` (the method): stage 1 is trained with its own loss, frozen, then stage 2 is trained on its
        outputs; ``"end_to_end"`` (ablation): both stages trained jointly through the stage-2 loss, for
        ``steps[0] + steps[1]`` steps (the same number of updates), with the stage-2 deformation.
    steps
        Optimisation steps for stage 1 and stage 2.
    batch_size
        Patches per step (per process in distributed runs); each gives two deformed views.
    patch_size
        Side of the square training patches in pixels (at least the stage-2 receptive field).
    loss
        Name of a function in :mod:`lcl.losses` (``"lcl"``, ``"barlow_twins"``, ``"infonce"``).
    loss_options
        Keyword arguments of that loss (e.g. ``{decorrelation = 1.0}``); unknown ones are rejected.
    pool_grid
        Each stage output is averaged over a ``pool_grid x pool_grid`` partition of the patch before the loss;
        cells are compared separately (see :func:`lcl.losses.pool_features`).
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; under ``torchrun`` each process uses its local GPU.
    precision
        ``"float32"``, or ``"bfloat16"`` (autocast; GPU only).
    compile
        Wrap the trained stage in ``torch.compile`` (GPU only).
    checkpoint_every
        Write a checkpoint every this many steps (and at the end of each stage).
    log_every
        Write a line to ``log.jsonl`` every this many steps.
    progress
        Show a tqdm progress bar.

    Examples
    --------
    >>> import lcl
    >>> lcl.TrainConfig(mode="end_to_end").mode
    'end_to_end'
    >>> lcl.TrainConfig(loss="simclr")
    Traceback (most recent call last):
    ...
    ValueError: unknown loss 'simclr'; known losses: ['barlow_twins', 'infonce', 'lcl']
    """

    mode: str = "layerwise"
    steps: tuple[int, int] = (3000, 3000)
    batch_size: int = 128
    patch_size: int = 64
    loss: str = "lcl"
    loss_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    pool_grid: int = 2
    device: str = "cpu"
    precision: str = "float32"
    compile: bool = False
    checkpoint_every: int = 500
    log_every: int = 10
    progress: bool = True

    def validate(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"TrainConfig.mode must be one of {_MODES}, got {self.mode!r}")
        if len(self.steps) != 2 or not all(_is_int(s) and s >= 0 for s in self.steps):
            raise ValueError(f"TrainConfig.steps must be two integers >= 0 (stage 1, stage 2), got {self.steps!r}")
        if sum(self.steps) == 0:
            raise ValueError("TrainConfig.steps are all zero: nothing to train")
        if not _is_int(self.batch_size) or self.batch_size < 2:
            raise ValueError(f"TrainConfig.batch_size must be an integer >= 2 (negatives come from other "
                             f"patches), got {self.batch_size!r}")
        if not _is_int(self.patch_size) or self.patch_size < 1:
            raise ValueError(f"TrainConfig.patch_size must be a positive integer, got {self.patch_size!r}")
        losses.validate_name(self.loss)
        if not isinstance(self.loss_options, dict):
            raise ValueError(f"TrainConfig.loss_options must be a table/dict, got {self.loss_options!r}")
        losses.validate_options(self.loss, self.loss_options)
        if not _is_int(self.pool_grid) or self.pool_grid < 1:
            raise ValueError(f"TrainConfig.pool_grid must be a positive integer, got {self.pool_grid!r}")
        if not isinstance(self.device, str) or not (self.device in ("cpu", "cuda") or self.device.startswith(
                "cuda:") or self.device == "mps"):
            raise ValueError(f"TrainConfig.device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}")
        if self.precision not in ("float32", "bfloat16"):
            raise ValueError(f"TrainConfig.precision must be 'float32' or 'bfloat16', got {self.precision!r}")
        if not isinstance(self.compile, bool) or not isinstance(self.progress, bool):
            raise ValueError("TrainConfig.compile and TrainConfig.progress must be booleans")
        for name in ("checkpoint_every", "log_every"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {getattr(self, name)!r}")

    def __hash__(self) -> int:  # loss_options is a dict
        return hash(tuple((f.name, repr(getattr(self, f.name))) for f in dataclasses.fields(self)))


@dataclasses.dataclass(frozen=True)
class LCLConfig(data.Config):
    """A complete LCL training run: model, deformation, optimisation, training and data configs, and the root seed.

    TOML layout (:meth:`load`): the root ``seed`` and one table per component (``[model]``, ``[model.stage1]``,
    ``[deform]``, ``[optim]``, ``[train]``, ``[data]``); missing keys take the defaults below, unknown keys are an
    error. Presets (:meth:`preset`; the files in ``configs/`` hold the same values):

    - ``"demo"`` (``configs/lcl_demo.toml``): 32 filters 9x9 in stage 1 and 64 filters 5x5 in stage 2, a few
      hundred steps on 48-px patches of the bundled photographs; each training takes about 1-2 minutes on 2 CPU
      cores.
    - ``"imagenet"`` (``configs/lcl_default.toml``): the full-scale run, 64 and 128 filters, 20000 steps per stage
      on 64-px patches streamed from an image folder (set ``data.folder``; ImageNet layout works).

    The paper's ablations are changes to any config, listed in :data:`lcl.ABLATIONS` (``cfg.replace(
    **lcl.ABLATIONS["fixed"])``).

    Checks that need the file system or the hardware (the image folder, CUDA) and the patch-versus-receptive-field
    checks (they build the model) are made by :func:`validate_config`, which :class:`lcl.Trainer` calls.

    Parameters
    ----------
    model, deform, optim, train, data
        Component configs.
    seed
        The run's root seed: every random draw of the run derives from it (the tree is in :mod:`lcl._config`).

    Raises
    ------
    TypeError, ValueError
        On construction, naming the field.

    Examples
    --------
    >>> import lcl
    >>> cfg = lcl.LCLConfig(deform=lcl.DeformConfig(matching="fixed"))
    >>> cfg.train.mode, cfg.deform.matching
    ('layerwise', 'fixed')
    >>> cfg = lcl.LCLConfig.preset("demo", train={"mode": "end_to_end"}, seed=3)
    >>> cfg.train.mode, cfg.model.stage1.channels, cfg.seed
    ('end_to_end', 32, 3)
    >>> lcl.LCLConfig.presets()
    ['demo', 'imagenet']
    """

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    deform: DeformConfig = dataclasses.field(default_factory=DeformConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    seed: int = 0

    def validate(self) -> None:
        for f, cls in (("model", ModelConfig), ("deform", DeformConfig), ("optim", OptimConfig),
                       ("train", TrainConfig), ("data", DataConfig)):
            if not isinstance(getattr(self, f), cls):
                raise ValueError(f"LCLConfig.{f} must be a {cls.__name__}, got {type(getattr(self, f)).__name__}")
        check_seed("LCLConfig.seed", self.seed)
        if self.train.patch_size > self.data.image_size:
            raise ValueError(f"patch_size {self.train.patch_size} is larger than the images (image_size "
                             f"{self.data.image_size})")
        if self.data.streaming and self.model.in_channels != 1:
            raise ValueError("the streaming loader reads grayscale images; use model.in_channels = 1")


#: The method and the paper's two ablations, as changes to a config (``cfg.replace(**ABLATIONS[name])``):
#: ``"lcl"`` none (layerwise, receptive-field-matched deformations); ``"fixed"``: both stages deformed with the
#: stage-1 amplitude in pixels; ``"end_to_end"``: both stages trained jointly through the stage-2 loss (same number
#: of updates).
ABLATIONS: dict[str, dict[str, Any]] = {
    "lcl": {},
    "fixed": {"deform": {"matching": "fixed"}},
    "end_to_end": {"train": {"mode": "end_to_end"}},
}


def _demo() -> LCLConfig:
    return LCLConfig(
        model=ModelConfig(stage1=StageConfig(channels=32, kernel=9),
                          stage2=StageConfig(channels=64, kernel=5, center_input=True, exponent=2.0)),
        train=TrainConfig(steps=(300, 300), batch_size=64, patch_size=48, checkpoint_every=200),
    )


def _imagenet() -> LCLConfig:
    return LCLConfig(
        model=ModelConfig(stage1=StageConfig(channels=64, kernel=9),
                          stage2=StageConfig(channels=128, kernel=5, center_input=True, exponent=2.0)),
        optim=OptimConfig(lr=5e-3, weight_decay=1e-4, warmup_steps=500),
        train=TrainConfig(steps=(20000, 20000), batch_size=256, patch_size=64, loss_options={"decorrelation": 1.0},
                          checkpoint_every=1000, log_every=50),
        data=DataConfig(source="folder", folder="/path/to/imagenet/train", image_size=256, streaming=True,
                        workers=8, patches_per_image=8),
    )


LCLConfig.PRESETS = {"demo": _demo, "imagenet": _imagenet}


def _folder_has_images(root: Path) -> bool:
    for _dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".") for f in filenames):
            return True
    return False


def validate_config(config: LCLConfig) -> LCLConfig:
    """Check what an :class:`LCLConfig` cannot check on construction, before any heavy work; return it unchanged.

    Entry points (:class:`lcl.Trainer`, ``python -m lcl train``) call it. It checks what needs the model built
    (the patch covers the receptive field of every trained stage and leaves at least ``pool_grid`` output
    positions), the file system (the image folder exists and holds images) and the hardware (the requested device
    exists; GPU-only options are not asked for on the CPU, a device the command line may still change).

    Parameters
    ----------
    config
        The run's configuration.

    Returns
    -------
    LCLConfig

    Raises
    ------
    ValueError
        Naming the problem.

    Examples
    --------
    >>> import lcl
    >>> cfg = lcl.LCLConfig().replace(train={"patch_size": 24})
    >>> lcl.validate_config(cfg)
    Traceback (most recent call last):
    ...
    ValueError: patch_size 24 is smaller than the receptive field of stage 2 (38 px); use patches of at least 38 px
    """
    if not isinstance(config, LCLConfig):
        raise TypeError(f"expected an LCLConfig, got {type(config).__name__}")
    model = V1V2(config.model)
    train = config.train
    trained = [s for s, n in zip((1, 2), train.steps) if n > 0] if train.mode == "layerwise" else [2]
    for stage in trained:
        rf = model.receptive_field(stage)
        if train.patch_size < rf:
            raise ValueError(f"patch_size {train.patch_size} is smaller than the receptive field of stage {stage} "
                             f"({rf} px); use patches of at least {rf} px")
        out = model.output_size(train.patch_size, stage)
        if out < train.pool_grid:
            raise ValueError(f"patch_size {train.patch_size} gives a {out}x{out} stage-{stage} output, fewer "
                             f"positions than pool_grid={train.pool_grid}; use larger patches or a smaller grid")
    d = config.data
    if d.source == "folder":
        root = Path(d.folder).expanduser()
        if not root.is_dir():
            raise ValueError(f"image folder does not exist: {root}")
        if not _folder_has_images(root):
            raise ValueError(f"image folder {root} is empty: it holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    dev = train.device
    data.validate_device(dev, "train.device")
    if not dev.startswith("cuda") and (train.precision != "float32" or train.compile):
        raise ValueError("precision='bfloat16' and compile=true are GPU options; use them with device='cuda'")
    return config
