"""Architecture configs of the two-stage V1/V2 model (:class:`lcl.V1V2` builds the network from them)."""

from __future__ import annotations

import dataclasses

import data
from data._checks import check_float, check_int

__all__ = ["StageConfig", "ModelConfig"]

#: The whitening kernel is cut from a 64 x 64 grid: its side is 2..64 (1 would be the zero kernel).
WHITEN_GRID = 64
#: Most channels a stage may have (input or output).
MAX_CHANNELS = 65_536


def _check_whiten(name: str, value: object) -> int:
    """A whitening-kernel side: 0 (off) or an integer in [2, 64]."""
    value = check_int(name, value, low=0, high=WHITEN_GRID)
    if value == 1:
        raise ValueError(f"{name} must be 0 (off) or an integer in [2, {WHITEN_GRID}], got 1 (a 1x1 zero-sum "
                         "kernel is zero)")
    return value



@dataclasses.dataclass(frozen=True)
class StageConfig(data.Config):
    """Architecture of one stage: conv -> half-wave rectification -> L2 pooling -> blur downsampling [-> norm].

    Parameters
    ----------
    channels
        Number of convolution filters (simple cells) and of output channels.
    kernel
        Side of the square convolution kernel, in the stage's input pixels.
    pool
        Side of the binomial L2-pooling window (complex cells: ``sqrt(blur(relu(conv)^2))``), stride 1;
        1 disables spatial pooling (the output is then the rectified response).
    downsample_kernel
        Side of the binomial blur kernel applied before subsampling.
    stride
        Subsampling factor of the blur-downsampling step (1 = no subsampling).
    divisive_norm
        Apply divisive normalization across channels after downsampling:
        ``y_c / (sigma + sqrt(mean_c' blur(y_c'^2)))``.
    norm_sigma
        Semi-saturation constant of the divisive normalization.
    bias
        Learn a bias in the convolution.
    init_scale
        Multiplies PyTorch's default (Kaiming-uniform) initialisation of the convolution weights. A small initial
        scale lets the learned structure dominate the random start quickly (our choice).
    center_input
        Subtract a fixed per-channel mean from the stage's input before the convolution (a buffer
        ``input_mean``, estimated from training patches when the stage starts training: see
        :meth:`Stage.set_input_mean`). A stage fed by rectified, all-positive responses otherwise sees a large
        common offset, and a filter whose weights sum below zero never crosses threshold: it goes silent for good
        (no gradient reaches it). With a centred input and no bias, ``conv`` has zero mean over the training
        data for any weights, so a channel can only be silent if its weights are all zero.
    exponent
        Output nonlinearity of the pooling: ``(blur(relu(conv)^2) + eps)^(exponent / 2)``. 1 is the amplitude
        (``sqrt``, a compressive, degree-1 output: complex cells), 2 the energy (an expansive, degree-2 output),
        any positive number in between or beyond.

    Raises
    ------
    ValueError
        For a ``channels``, ``kernel``, ``pool``, ``downsample_kernel`` or ``stride`` that is not a positive
        integer (or above ``MAX_CHANNELS`` = 65536 channels), a ``downsample_kernel`` below the stride,
        non-boolean flags, an ``init_scale`` or ``norm_sigma`` that is not a finite number > 0, an ``exponent``
        outside (0, 4].

    Examples
    --------
    >>> import lcl
    >>> lcl.StageConfig(channels=32, kernel=7).kernel
    7
    >>> lcl.StageConfig(kernel=0)
    Traceback (most recent call last):
    ...
    ValueError: StageConfig.kernel must be a positive integer, got 0
    """

    channels: int = 64
    kernel: int = 9
    pool: int = 3
    downsample_kernel: int = 4
    stride: int = 2
    divisive_norm: bool = False
    norm_sigma: float = 0.1
    bias: bool = False
    init_scale: float = 0.1
    center_input: bool = False
    exponent: float = 1.0

    def validate(self) -> None:
        for name in ("channels", "kernel", "pool", "downsample_kernel", "stride"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ValueError(f"StageConfig.{name} must be a positive integer, got {val!r}")
        if self.downsample_kernel < self.stride:
            raise ValueError(
                f"StageConfig.downsample_kernel ({self.downsample_kernel}) must be at least the stride "
                f"({self.stride}), or subsampling would skip pixels"
            )
        for name in ("divisive_norm", "bias", "center_input"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"StageConfig.{name} must be a boolean, got {getattr(self, name)!r}")
        if self.channels > MAX_CHANNELS:
            raise ValueError(f"StageConfig.channels must be at most {MAX_CHANNELS}, got {self.channels}")
        if isinstance(self.init_scale, bool) or not isinstance(self.init_scale, (int, float)) \
                or not self.init_scale > 0:
            raise ValueError(f"StageConfig.init_scale must be a positive number, got {self.init_scale!r}")
        check_float("StageConfig.init_scale", self.init_scale, low=0.0, low_open=True)
        if isinstance(self.norm_sigma, bool) or not (isinstance(self.norm_sigma, (int, float))
                                                     and self.norm_sigma > 0):
            raise ValueError(f"StageConfig.norm_sigma must be positive, got {self.norm_sigma!r}")
        check_float("StageConfig.norm_sigma", self.norm_sigma, low=0.0, low_open=True)
        if isinstance(self.exponent, bool) or not isinstance(self.exponent, (int, float)) \
                or not 0 < self.exponent <= 4:
            raise ValueError(f"StageConfig.exponent must be a number in (0, 4] (1 = amplitude, 2 = energy), "
                             f"got {self.exponent!r}")


def _default_stage2() -> StageConfig:
    return StageConfig(channels=128, kernel=5, pool=3, downsample_kernel=4, stride=2, center_input=True, exponent=2.0)


@dataclasses.dataclass(frozen=True)
class ModelConfig(data.Config):
    """Architecture of the two-stage model (grayscale input by default).

    Parameters
    ----------
    in_channels
        Channels of the input images (1 = grayscale).
    whiten
        Side of the fixed retina-like whitening kernel at the start of stage 1 (``stage1.whiten``, see
        :func:`whitening_kernel`), 2..64; 0 disables it. Flattening the 1/f spectrum of natural images lets the
        stage-1 filters learn high frequencies quickly (our choice; the paper does not specify).
    stage1
        The V1 stage (default: 64 filters 9x9, L2 pooling 3, blur-downsampling 4 with stride 2).
    stage2
        The V2 stage (default: 128 filters 5x5 on the centred stage-1 output, no bias, energy output
        (``exponent = 2``) of the L2 pooling 3, blur-downsampling 4 with stride 2).

    Raises
    ------
    ValueError
        For an ``in_channels`` that is not an integer in [1, 65536], a ``whiten`` that is not 0 or an integer in
        [2, 64], stages that are not :class:`StageConfig`.

    Examples
    --------
    >>> import lcl
    >>> cfg = lcl.ModelConfig(stage1=lcl.StageConfig(channels=16))
    >>> lcl.V1V2(cfg).stage1.conv.out_channels
    16
    """

    in_channels: int = 1
    whiten: int = 7
    stage1: StageConfig = dataclasses.field(default_factory=StageConfig)
    stage2: StageConfig = dataclasses.field(default_factory=_default_stage2)

    def validate(self) -> None:
        if isinstance(self.in_channels, bool) or not isinstance(self.in_channels, int) or self.in_channels < 1:
            raise ValueError(f"ModelConfig.in_channels must be a positive integer, got {self.in_channels!r}")
        if isinstance(self.whiten, bool) or not isinstance(self.whiten, int) or self.whiten < 0:
            raise ValueError(f"ModelConfig.whiten must be an integer >= 0 (0 = off), got {self.whiten!r}")
        check_int("ModelConfig.in_channels", self.in_channels, high=MAX_CHANNELS)
        _check_whiten("ModelConfig.whiten", self.whiten)
        for name in ("stage1", "stage2"):
            if not isinstance(getattr(self, name), StageConfig):
                raise ValueError(f"ModelConfig.{name} must be a StageConfig")
