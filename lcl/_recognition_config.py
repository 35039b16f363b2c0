"""Configs of LCL-V2Net: the ResNet-style back end and the recognition benchmark that trains and tests it.

Seeds: :attr:`RecognitionConfig.seed` is the benchmark's one root seed (``[backend]`` carries none);
:mod:`lcl._recognition` derives every other one with :func:`data.derive_seed`::

    seed                                       RecognitionConfig.seed
    |- derive_seed(seed, "split")              the held-out tiles and test crops (CropTask)
    |- derive_seed(seed, "weights", kind)      the initial weights of front end ``kind``'s network
    |- derive_seed(seed, "crops")              the training crops (train_v2net)
    '- derive_seed(seed, "corruption", c, s)   the noise of corruption ``c`` at severity ``s``
"""

from __future__ import annotations

import dataclasses
from typing import Any

import data
from data._checks import check_bool, check_device, check_float, check_int, check_nbytes, check_seed

from ._corrupt import CORRUPTIONS

__all__ = ["BackEndConfig", "RecognitionConfig", "FRONT_ENDS", "MAX_CHANNELS"]

#: ``lcl``: the trained V1/V2 stages, frozen; ``pixels``: a standard ResNet stem (7x7/2 conv, BN, ReLU, 3x3/2
#: max-pool; the same stride 4 as the front end) trained with the back end on raw pixels; ``supervised``: the
#: V1/V2 architecture, freshly initialised and trained end to end with the back end (architecture-matched).
FRONT_ENDS = ("lcl", "pixels", "supervised")
#: Largest channel count (input channels, widths) accepted by the networks of LCL-V2Net.
MAX_CHANNELS = 65_536


def _pos_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


@dataclasses.dataclass(frozen=True)
class BackEndConfig(data.Config):
    """ResNet-style back end: a 3x3 conv stem, then residual stages of basic blocks, global pooling, linear.

    Parameters
    ----------
    widths
        Channels of each residual stage; every stage after the first halves the resolution.
    blocks
        Basic blocks (two 3x3 conv + batch norm, identity or 1x1 shortcut) per stage.

    Raises
    ------
    ValueError
        For widths that are not 1 to 65536, or ``blocks`` not in [1, 1000].

    Examples
    --------
    >>> import lcl
    >>> lcl.BackEndConfig(widths=(32, 64), blocks=1).widths
    (32, 64)
    >>> lcl.BackEndConfig(widths=())
    Traceback (most recent call last):
    ...
    ValueError: BackEndConfig.widths must be a non-empty tuple of positive integers, got ()
    """

    widths: tuple[int, ...] = (64, 128, 256)
    blocks: int = 2

    def validate(self) -> None:
        if not isinstance(self.widths, tuple) or not self.widths or not all(_pos_int(w) for w in self.widths):
            raise ValueError(f"BackEndConfig.widths must be a non-empty tuple of positive integers, "
                             f"got {self.widths!r}")
        if max(self.widths) > MAX_CHANNELS or len(self.widths) > 64:
            raise ValueError(f"BackEndConfig.widths must be at most 64 stages of at most {MAX_CHANNELS} channels, "
                             f"got {self.widths!r:.80}")
        if not _pos_int(self.blocks):
            raise ValueError(f"BackEndConfig.blocks must be a positive integer, got {self.blocks!r}")
        check_int("BackEndConfig.blocks", self.blocks, high=1000)


@dataclasses.dataclass(frozen=True)
class RecognitionConfig(data.Config):
    """LCL-V2Net's recognition task, its back end and its training: classify crops of the bundled images.

    Classes are the bundled natural photographs (scene identity, ``data.natural_images``) and texture families
    (``data.texture_images``). Each image is cut into ``tile_size`` tiles; a seeded ``test_fraction`` of the tiles
    of every image is held out: test crops lie inside held-out tiles, training crops never touch them.

    Parameters
    ----------
    front_ends
        Front ends to compare (see :data:`FRONT_ENDS`); each gets a fresh back end of the same architecture.
    image_size, tile_size, crop_size
        Image side, tile side and crop side in pixels (``crop_size <= tile_size <= image_size``).
    test_fraction
        Fraction of each image's tiles held out for testing.
    test_crops_per_tile
        Test crops per held-out tile (seeded positions inside the tile).
    steps, batch_size, lr, weight_decay, warmup_steps
        AdamW with linear warm-up and cosine decay, cross-entropy on random training crops.
    grad_clip
        Largest global norm of the gradients (0: no clipping).
    corruptions
        Names from :data:`lcl.CORRUPTIONS` applied to the test crops.
    severities
        Severities 1..5 to evaluate (0 = clean is always evaluated).
    seed
        The root seed of the benchmark: the split, the back-end initialisation, the training crops and the
        corruptions all derive from it (see :mod:`lcl._recognition_config`).
    device
        Torch device.
    progress
        Show progress bars.
    backend
        The back-end architecture, the same for every front end (TOML: a ``[backend]`` table).

    Presets (:meth:`preset`): ``"demo"``, a small back end and a short training (about a minute per front end on
    2 CPU cores; ``configs/lcl_v2net_demo.toml`` holds the same values).

    Raises
    ------
    TypeError, ValueError
        On construction, naming the field (types, ranges, unknown names, a batch whose crops would not fit in
        memory).

    Examples
    --------
    >>> import lcl
    >>> lcl.RecognitionConfig(front_ends=("lcl", "supervised")).front_ends
    ('lcl', 'supervised')
    >>> rec = lcl.RecognitionConfig.preset("demo", steps=10)
    >>> rec.backend.widths, rec.steps
    ((32, 64), 10)
    >>> lcl.RecognitionConfig(crop_size=80, tile_size=64)
    Traceback (most recent call last):
    ...
    ValueError: RecognitionConfig needs crop_size <= tile_size <= image_size, got 80, 64, 256
    """

    front_ends: tuple[str, ...] = ("lcl", "pixels")
    image_size: int = 256
    tile_size: int = 64
    crop_size: int = 48
    test_fraction: float = 0.25
    test_crops_per_tile: int = 4
    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_steps: int = 100
    grad_clip: float = 0.0
    corruptions: tuple[str, ...] = tuple(CORRUPTIONS)
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    backend: BackEndConfig = dataclasses.field(default_factory=BackEndConfig)

    def validate(self) -> None:
        if not self.front_ends or any(f not in FRONT_ENDS for f in self.front_ends) or \
                len(set(self.front_ends)) != len(self.front_ends):
            raise ValueError(f"RecognitionConfig.front_ends must be distinct names from {FRONT_ENDS}, "
                             f"got {self.front_ends!r}")
        for name in ("image_size", "tile_size", "crop_size", "test_crops_per_tile", "steps", "batch_size"):
            if not _pos_int(getattr(self, name)):
                raise ValueError(f"RecognitionConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.crop_size <= self.tile_size <= self.image_size:
            raise ValueError(f"RecognitionConfig needs crop_size <= tile_size <= image_size, got "
                             f"{self.crop_size}, {self.tile_size}, {self.image_size}")
        n_tiles = (self.image_size // self.tile_size) ** 2
        if not (isinstance(self.test_fraction, (int, float)) and 0 < self.test_fraction < 1):
            raise ValueError(f"RecognitionConfig.test_fraction must be in (0, 1), got {self.test_fraction!r}")
        if n_tiles < 2:
            raise ValueError(f"RecognitionConfig: image_size {self.image_size} holds {n_tiles} tile(s) of "
                             f"{self.tile_size} px; need at least 2 to hold some out")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"RecognitionConfig.lr must be positive, got {self.lr!r}")
        check_float("RecognitionConfig.lr", self.lr)
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"RecognitionConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        check_float("RecognitionConfig.weight_decay", self.weight_decay)
        check_nbytes("RecognitionConfig.batch_size", self.batch_size, 4.0 * 64 * self.batch_size * self.crop_size ** 2,
                     what=f"a batch of {self.batch_size} crops of {self.crop_size} px with 64 feature channels")
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"RecognitionConfig.warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        check_float("RecognitionConfig.grad_clip", self.grad_clip, low=0.0)
        unknown = [c for c in self.corruptions if c not in CORRUPTIONS]
        if unknown:
            raise ValueError(f"unknown corruption(s) {unknown}; known: {sorted(CORRUPTIONS)}")
        if any(isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 5 for s in self.severities):
            raise ValueError(f"RecognitionConfig.severities must be integers in 1..5, got {self.severities!r}")
        if not isinstance(self.device, str):
            raise ValueError(f"RecognitionConfig.device must be a string, got {self.device!r}")
        check_device("RecognitionConfig.device", self.device)
        check_seed("RecognitionConfig.seed", self.seed)
        check_bool("RecognitionConfig.progress", self.progress)
        if not isinstance(self.backend, BackEndConfig):
            raise TypeError(f"RecognitionConfig.backend must be a BackEndConfig, got {type(self.backend).__name__}")


def _demo() -> RecognitionConfig:
    # Small back end and short training for the demo (about a minute per front end on 2 CPU cores).
    return RecognitionConfig(steps=300, batch_size=32, lr=3e-3, warmup_steps=20, severities=(1, 3, 5),
                             backend=BackEndConfig(widths=(32, 64), blocks=1))


RecognitionConfig.PRESETS = {"demo": _demo}
