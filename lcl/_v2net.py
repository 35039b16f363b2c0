"""LCL-V2Net: a frozen LCL front end + a ResNet-style back end for recognition, and its configs; the task, training
and evaluation under corruptions are in ``lcl._recognition``."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import data
from data._checks import (check_bool, check_choice, check_device, check_float, check_int, check_nbytes, check_path,
                          check_seed)

from ._corrupt import CORRUPTIONS
from ._model import V1V2

__all__ = ["BackEndConfig", "RecognitionConfig", "BackEnd", "V2Net", "PixelStem", "build_v2net",
           "load_recognition_config", "demo_recognition_config", "FRONT_ENDS"]

#: ``lcl``: the trained V1/V2 stages, frozen; ``pixels``: a standard ResNet stem (7x7/2 conv, BN, ReLU, 3x3/2
#: max-pool; the same stride 4 as the front end) trained with the back end on raw pixels; ``supervised``: the
#: V1/V2 architecture, freshly initialised and trained end to end with the back end (architecture-matched).
FRONT_ENDS = ("lcl", "pixels", "supervised")
#: Largest channel count (input channels, widths) and class count accepted by the networks here.
MAX_CHANNELS = 65_536
MAX_CLASSES = 1_000_000


def _pos_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


@dataclasses.dataclass(frozen=True)
class BackEndConfig:
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

    def __post_init__(self) -> None:
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
class RecognitionConfig:
    """The recognition task and its training: classify crops of the bundled images, held out by crop.

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
        Seeds the split, the back-end initialisation, the crops and the corruptions.
    device
        Torch device.
    progress
        Show progress bars.

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

    def __post_init__(self) -> None:
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


# --------------------------------------------------------------------------------------------------- networks
class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class BackEnd(nn.Module):
    """ResNet-style classifier on a feature map: ``stem``, ``layers.0`` ... ``layers.k``, ``pool``, ``fc``.

    Parameters
    ----------
    in_channels
        Channels of the input feature map.
    n_classes
        Output classes.
    config
        Widths and blocks.

    Raises
    ------
    TypeError, ValueError
        For channel or class counts that are not positive integers (at most 65536 channels, 10^6 classes), a
        ``config`` that is not a :class:`BackEndConfig`, or weights that would not fit in memory.

    Examples
    --------
    >>> import torch, lcl
    >>> b = lcl.BackEnd(64, 10, lcl.BackEndConfig(widths=(16, 32), blocks=1))
    >>> tuple(b(torch.rand(2, 64, 7, 7)).shape)
    (2, 10)
    """

    def __init__(self, in_channels: int, n_classes: int, config: BackEndConfig | None = None):
        super().__init__()
        in_channels = check_int("in_channels", in_channels, low=1, high=MAX_CHANNELS)
        n_classes = check_int("n_classes", n_classes, low=1, high=MAX_CLASSES)
        config = BackEndConfig() if config is None else config
        if not isinstance(config, BackEndConfig):
            raise TypeError(f"config must be a BackEndConfig, got {type(config).__name__}")
        w0 = config.widths[0]
        n_weights = 9 * in_channels * w0 + config.widths[-1] * n_classes + sum(
            18 * w * w * config.blocks for w in config.widths)
        check_nbytes("config", config, 4.0 * n_weights, what=f"a back end of about {n_weights:.3g} weights")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, w0, 3, padding=1, bias=False), nn.BatchNorm2d(w0),
                                  nn.ReLU())
        layers, cin = [], w0
        for i, w in enumerate(config.widths):
            blocks = [_Block(cin, w, 2 if i > 0 else 1)] + [_Block(w, w, 1) for _ in range(config.blocks - 1)]
            layers.append(nn.Sequential(*blocks))
            cin = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


class PixelStem(nn.Module):
    """Standard ResNet stem on raw pixels: 7x7 conv stride 2, batch norm, ReLU, 3x3 max-pool stride 2.

    Parameters
    ----------
    in_channels
        Image channels (1 to 65536).
    channels
        Output channels (1 to 65536).

    Examples
    --------
    >>> import torch, lcl
    >>> tuple(lcl.PixelStem(1, 32)(torch.rand(1, 1, 48, 48)).shape)
    (1, 32, 12, 12)
    """

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        in_channels = check_int("in_channels", in_channels, low=1, high=MAX_CHANNELS)
        channels = check_int("channels", channels, low=1, high=MAX_CHANNELS)
        check_nbytes("channels", channels, 4.0 * 49 * in_channels * channels, what="the stem's weights")
        self.conv = nn.Conv2d(in_channels, channels, 7, stride=2, padding=3, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.bn(self.conv(x))))


class V2Net(nn.Module):
    """Front end (``front_end``) followed by a ResNet-style back end (``backend``).

    With ``frozen=True`` the front end stays in eval mode, has no trainable parameters and runs under
    ``torch.no_grad``. Record with ``data.record(net, stimuli, layers=["front_end.stage2", "backend.layers.0"])``.

    Parameters
    ----------
    front_end
        A :class:`lcl.V1V2`, a :class:`PixelStem` or any module mapping images to a feature map.
    backend
        The classifier.
    frozen
        Freeze the front end.

    Examples
    --------
    >>> import torch, lcl
    >>> front = lcl.V1V2(lcl.demo_config().model)
    >>> net = lcl.V2Net(front, lcl.BackEnd(64, 5, lcl.BackEndConfig(widths=(16,), blocks=1)), frozen=True)
    >>> tuple(net(torch.rand(2, 1, 48, 48)).shape), net.front_end.stage1.conv.weight.requires_grad
    ((2, 5), False)
    """

    def __init__(self, front_end: nn.Module, backend: BackEnd, *, frozen: bool):
        super().__init__()
        if not isinstance(front_end, nn.Module):
            raise TypeError(f"front_end must be a torch.nn.Module, got {type(front_end).__name__}")
        if not isinstance(backend, nn.Module):
            raise TypeError(f"backend must be a torch.nn.Module (a BackEnd), got {type(backend).__name__}")
        frozen = check_bool("frozen", frozen)
        self.front_end = front_end
        self.backend = backend
        self.frozen = frozen
        if frozen:
            self.front_end.requires_grad_(False)
            self.front_end.eval()

    def train(self, mode: bool = True) -> V2Net:
        super().train(mode)
        if self.frozen:
            self.front_end.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen:
            with torch.no_grad():
                h = self.front_end(x)
        else:
            h = self.front_end(x)
        return self.backend(h)


def _front_channels(front: nn.Module) -> int:
    if isinstance(front, V1V2):
        return front.config.stage2.channels
    return int(front.out_channels)


def build_v2net(kind: str, lcl_model: V1V2 | None, backend: BackEndConfig, n_classes: int, *, seed: int = 0,
                in_channels: int = 1) -> V2Net:
    """Build the network for one front end (see :data:`FRONT_ENDS`) with a freshly initialised back end.

    Parameters
    ----------
    kind
        ``"lcl"`` (needs ``lcl_model``, used frozen), ``"pixels"`` or ``"supervised"`` (architecture of
        ``lcl_model``, or the default, trained from scratch).
    lcl_model
        The trained LCL model.
    backend
        Back-end architecture.
    n_classes
        Number of classes.
    seed
        Seeds the new weights.
    in_channels
        Image channels.

    Returns
    -------
    V2Net

    Raises
    ------
    TypeError, ValueError
        Before building anything, for an unknown ``kind``, an ``lcl_model`` that is not a :class:`lcl.V1V2`
        (or missing for ``"lcl"``), a ``backend`` that is not a :class:`BackEndConfig`, bad counts or seed.

    Examples
    --------
    >>> import lcl
    >>> net = lcl.build_v2net("pixels", None, lcl.BackEndConfig(widths=(16,), blocks=1), 4)
    >>> type(net.front_end).__name__, net.frozen
    ('PixelStem', False)
    """
    check_choice("kind", kind, FRONT_ENDS)
    if lcl_model is not None and not isinstance(lcl_model, V1V2):
        raise TypeError(f"lcl_model must be an lcl.V1V2 or None, got {type(lcl_model).__name__}")
    if not isinstance(backend, BackEndConfig):
        raise TypeError(f"backend must be a BackEndConfig, got {type(backend).__name__}")
    n_classes = check_int("n_classes", n_classes, low=1, high=MAX_CLASSES)
    seed = check_seed("seed", seed)
    in_channels = check_int("in_channels", in_channels, low=1, high=MAX_CHANNELS)
    torch.manual_seed(seed)
    if kind == "lcl":
        if lcl_model is None:
            raise ValueError("front end 'lcl' needs a trained LCL model")
        front: nn.Module = lcl_model
    elif kind == "pixels":
        front = PixelStem(in_channels, backend.widths[0])
    elif kind == "supervised":
        config = lcl_model.config if lcl_model is not None else None
        front = V1V2(config)
    else:
        raise ValueError(f"unknown front end {kind!r}; known: {FRONT_ENDS}")
    net = V2Net(front, BackEnd(_front_channels(front), n_classes, backend), frozen=kind == "lcl")
    return net


def demo_recognition_config(**changes: Any) -> tuple[BackEndConfig, RecognitionConfig]:
    """Small back end and short training for the demo (about a minute per front end on 2 CPU cores).

    Examples
    --------
    >>> import lcl
    >>> backend, rec = lcl.demo_recognition_config(steps=10)
    >>> backend.widths, rec.steps
    ((32, 64), 10)
    """
    rec = RecognitionConfig(steps=300, batch_size=32, lr=3e-3, warmup_steps=20, severities=(1, 3, 5))
    return BackEndConfig(widths=(32, 64), blocks=1), dataclasses.replace(rec, **changes)


def load_recognition_config(path: str | os.PathLike | None, *, demo: bool = False
                            ) -> tuple[BackEndConfig, RecognitionConfig]:
    """Read ``[backend]`` and ``[recognition]`` tables from a TOML file (unknown keys rejected).

    Missing tables or keys take the defaults (or the demo values with ``demo=True``).

    Parameters
    ----------
    path
        A TOML file, or ``None`` for the defaults.
    demo
        Start from :func:`demo_recognition_config` instead of the defaults.

    Returns
    -------
    (BackEndConfig, RecognitionConfig)

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    TypeError, ValueError
        For a ``path`` that is not a path, a non-bool ``demo``, unknown tables or keys, invalid values.

    Examples
    --------
    >>> import lcl, pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "v2net.toml"
    >>> _ = p.write_text("[backend]\\nwidths = [16, 32]\\n[recognition]\\nsteps = 100\\n")
    >>> backend, rec = lcl.load_recognition_config(p)
    >>> backend.widths, rec.steps
    ((16, 32), 100)
    """
    path = check_path("path", path, none=True)
    demo = check_bool("demo", demo)
    base_backend, base_rec = demo_recognition_config() if demo else (BackEndConfig(), RecognitionConfig())
    if path is None:
        return base_backend, base_rec
    values = data.load_toml(path)
    unknown = sorted(set(values) - {"backend", "recognition"})
    if unknown:
        raise ValueError(f"unknown table(s) {unknown} in {path}; valid tables: ['backend', 'recognition']")
    backend = data.update_config(base_backend, values.get("backend", {}), where="[backend] ")
    rec = data.update_config(base_rec, values.get("recognition", {}), where="[recognition] ")
    return backend, rec
