"""The two-stage V1/V2 model: convolution, rectification, L2 pooling, blur downsampling, divisive normalization."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from data._checks import check_float, check_instance, check_int, check_nbytes

from ._model_config import MAX_CHANNELS, WHITEN_GRID, ModelConfig, StageConfig, _check_whiten

__all__ = ["Stage", "V1V2", "ReceptiveField", "whitening_kernel"]

def _binomial(n: int) -> torch.Tensor:
    """1-D binomial (approximately Gaussian) kernel with ``n`` taps, summing to one."""
    row = torch.ones(1, dtype=torch.float64)
    for _ in range(n - 1):
        row = torch.cat([row, torch.zeros(1, dtype=torch.float64)]) + torch.cat(
            [torch.zeros(1, dtype=torch.float64), row])
    return row / row.sum()


class ReceptiveField(NamedTuple):
    """Receptive-field size and cumulative stride of a stage, in input pixels.

    Examples
    --------
    >>> import lcl
    >>> lcl.V1V2().rf(2)
    ReceptiveField(size=38, stride=4)
    """

    size: int
    stride: int


#: The receptive field of the input itself: one pixel, stride one.
_NO_INPUT_RF = ReceptiveField(1, 1)


def whitening_kernel(size: int, cutoff: float = 0.4) -> torch.Tensor:
    """Fixed retina-like whitening kernel: spectrum ``|f| exp(-(|f|/cutoff)^4)`` (Olshausen & Field 1996).

    Flattens the 1/f amplitude spectrum of natural images (a centre-surround, zero-sum kernel), cropped to
    ``size x size`` and scaled to unit L2 norm.

    Parameters
    ----------
    size
        Side of the kernel, 2..64 (it is cut from a 64 x 64 grid).
    cutoff
        Frequency (cycles/pixel, > 0) of the kernel's high-frequency roll-off.

    Raises
    ------
    TypeError
        For a ``size`` that is not an integer, a ``cutoff`` that is not a real number.
    ValueError
        For a ``size`` outside [2, 64], a ``cutoff`` that is not a finite number > 0, or one so small that the
        kernel vanishes (below about 0.003 cycles/pixel).

    Examples
    --------
    >>> import lcl
    >>> k = lcl.whitening_kernel(7)
    >>> tuple(k.shape), abs(float(k.sum())) < 1e-6, round(float(k.norm()), 4)
    ((7, 7), True, 1.0)
    """
    size = check_int("size", size, low=2, high=WHITEN_GRID)
    cutoff = check_float("cutoff", cutoff, low=0.0, low_open=True)
    n = WHITEN_GRID
    fy = torch.fft.fftfreq(n, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(n, dtype=torch.float64)[None, :]
    f = torch.sqrt(fy ** 2 + fx ** 2)
    spatial = torch.fft.fftshift(torch.fft.ifft2(f * torch.exp(-((f / cutoff) ** 4))).real)
    lo = n // 2 - size // 2
    k = spatial[lo:lo + size, lo:lo + size]
    k = k - k.mean()
    norm = float(k.norm())
    if not (math.isfinite(norm) and norm > 0):
        raise ValueError(f"cutoff={cutoff!r} is too small: the whitening kernel vanishes")
    return (k / norm).float()


class Whiten(nn.Module):
    """Fixed whitening convolution (see :func:`whitening_kernel`), applied per input channel, no padding."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.size, self.channels = size, channels
        self.register_buffer("kernel", whitening_kernel(size).expand(channels, 1, size, size).clone(),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel.to(x.dtype), groups=self.channels)


class L2Pool(nn.Module):
    """Complex-cell pooling ``(blur(x^2) + eps)^(exponent / 2)`` with a fixed binomial window (stride 1, no
    padding); ``exponent = 1`` is the L2 amplitude ``sqrt(blur(x^2) + eps)``, 2 the energy."""

    def __init__(self, channels: int, size: int, eps: float = 1e-6, exponent: float = 1.0):
        super().__init__()
        self.size, self.eps, self.channels, self.exponent = size, eps, channels, float(exponent)
        k = _binomial(size)
        self.register_buffer("kernel", torch.outer(k, k).float().expand(channels, 1, size, size).clone(),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energy = x * x if self.size == 1 else F.conv2d(x * x, self.kernel.to(x.dtype), groups=self.channels)
        energy = energy + self.eps
        if self.exponent == 1.0:
            return torch.sqrt(energy)
        if self.exponent == 2.0:
            return energy
        return energy.pow(0.5 * self.exponent)


class BlurDownsample(nn.Module):
    """Anti-aliased subsampling: a fixed binomial blur applied with the given stride (no padding)."""

    def __init__(self, channels: int, size: int, stride: int):
        super().__init__()
        self.size, self.stride, self.channels = size, stride, channels
        k = _binomial(size)
        self.register_buffer("kernel", torch.outer(k, k).float().expand(channels, 1, size, size).clone(),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.size == 1 and self.stride == 1:
            return x
        return F.conv2d(x, self.kernel.to(x.dtype), stride=self.stride, groups=self.channels)


class DivisiveNorm(nn.Module):
    """Divisive normalization: each channel divided by ``sigma`` plus the local RMS across channels (3x3 blur)."""

    def __init__(self, channels: int, sigma: float):
        super().__init__()
        self.sigma, self.channels = sigma, channels
        k = _binomial(3)
        self.register_buffer("kernel", torch.outer(k, k).float()[None, None].clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energy = (x * x).mean(dim=1, keepdim=True)
        energy = F.conv2d(F.pad(energy, (1, 1, 1, 1), mode="replicate"), self.kernel.to(x.dtype))
        return x / (self.sigma + torch.sqrt(energy + 1e-12))


class Stage(nn.Module):
    """One stage: named submodules ``whiten``, ``conv``, ``rectify``, ``pool``, ``downsample``, ``norm``.

    Every layer is "valid" (no padding), so each output unit sees exactly :meth:`receptive_field` input pixels.

    Parameters
    ----------
    in_channels
        Input channels.
    config
        The stage's architecture.
    whiten
        Side of a fixed whitening kernel applied first (0 = none, the ``whiten`` submodule is an identity;
        otherwise 2..64).

    Raises
    ------
    TypeError
        For an ``in_channels`` or ``whiten`` that is not an integer, a ``config`` that is not a
        :class:`StageConfig`.
    ValueError
        For an ``in_channels`` outside [1, 65536], a ``whiten`` that is not 0 or in [2, 64], weights that would
        not fit in memory.

    Examples
    --------
    >>> import torch, lcl
    >>> s = lcl.Stage(1, lcl.StageConfig(channels=8, kernel=5, pool=3, downsample_kernel=4, stride=2))
    >>> tuple(s(torch.rand(2, 1, 32, 32)).shape)
    (2, 8, 12, 12)
    >>> s.receptive_field()
    ReceptiveField(size=10, stride=2)
    """

    def __init__(self, in_channels: int, config: StageConfig, whiten: int = 0):
        in_channels = check_int("in_channels", in_channels, low=1, high=MAX_CHANNELS)
        check_instance("config", config, StageConfig)
        whiten = _check_whiten("whiten", whiten)
        check_nbytes("in_channels", in_channels,
                     4.0 * (in_channels * (config.channels * config.kernel ** 2 + whiten ** 2)
                            + config.channels * (config.pool ** 2 + config.downsample_kernel ** 2)),
                     what=f"a stage of {in_channels} x {config.channels} channels")
        super().__init__()
        self.config = config
        self.whiten_size = whiten
        c = config.channels
        self.whiten = Whiten(in_channels, whiten) if whiten else nn.Identity()
        if config.center_input:
            self.register_buffer("input_mean", torch.zeros(in_channels))
        self.conv = nn.Conv2d(in_channels, c, config.kernel, bias=config.bias)
        with torch.no_grad():
            self.conv.weight.mul_(config.init_scale)
        self.rectify = nn.ReLU()
        self.pool = L2Pool(c, config.pool, exponent=config.exponent)
        self.downsample = BlurDownsample(c, config.downsample_kernel, config.stride)
        self.norm = DivisiveNorm(c, config.norm_sigma) if config.divisive_norm else nn.Identity()

    def layers(self) -> list[tuple[int, int]]:
        """(kernel, stride) of every spatial operation in order (dilation is always 1)."""
        c = self.config
        first = [(self.whiten_size, 1)] if self.whiten_size else []
        return [*first, (c.kernel, 1), (c.pool, 1), (c.downsample_kernel, c.stride)]

    def receptive_field(self, start: ReceptiveField = _NO_INPUT_RF) -> ReceptiveField:
        """Receptive field after this stage, given the receptive field ``start`` of its input units."""
        size, jump = start.size, start.stride
        for kernel, stride in self.layers():
            size += (kernel - 1) * jump
            jump *= stride
        return ReceptiveField(int(size), int(jump))

    def output_size(self, size: int) -> int:
        """Spatial side of the output for an input of side ``size`` (0 if too small)."""
        for kernel, stride in self.layers():
            if size < kernel:
                return 0
            size = (size - kernel) // stride + 1
        return size

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        x = self.whiten(x)
        if self.config.center_input:
            x = x - self.input_mean.to(x.dtype).view(1, -1, 1, 1)
        return x

    def set_input_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Set ``input_mean`` to the per-channel mean of the inputs ``x`` (batch, channel, y, x); return it.

        Only for stages with ``center_input``; the trainer calls it when the stage starts training.

        Examples
        --------
        >>> import torch, lcl
        >>> s = lcl.Stage(2, lcl.StageConfig(channels=3, kernel=3, center_input=True))
        >>> s.set_input_mean(torch.ones(4, 2, 8, 8) * torch.tensor([1.0, 3.0]).view(1, 2, 1, 1)).tolist()
        [1.0, 3.0]
        """
        if not self.config.center_input:
            raise ValueError("set_input_mean needs a stage with center_input = true")
        with torch.no_grad():
            mean = self.whiten(x).mean(dim=(0, 2, 3)).to(self.input_mean.dtype)
            self.input_mean.copy_(mean)
        return self.input_mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.downsample(self.pool(self.rectify(self.conv(self._input(x))))))

    def silent_channels(self, x: torch.Tensor) -> torch.Tensor:
        """Which channels are silent on the inputs ``x``: boolean ``(channels,)``.

        A channel is silent when its rectified response ``relu(conv)`` is zero at every position of every input
        (its output is then the constant floor of the pooling, and no gradient reaches its weights).

        Examples
        --------
        >>> import torch, lcl
        >>> s = lcl.Stage(1, lcl.StageConfig(channels=2, kernel=3, bias=True))
        >>> with torch.no_grad():
        ...     _ = s.conv.weight.zero_(); _ = s.conv.bias.copy_(torch.tensor([1.0, -1.0]))
        >>> s.silent_channels(torch.rand(4, 1, 16, 16)).tolist()
        [False, True]
        """
        with torch.no_grad():
            pre = self.conv(self._input(x))
            return pre.amax(dim=(0, 2, 3)) <= 0


class V1V2(nn.Module):
    """Two-stage model of V1 and V2 with submodules ``stage1`` and ``stage2``.

    ``forward(x)`` returns the stage-2 output; :meth:`features` returns any stage's output. Record stages with
    ``data.record(model, stimuli, layers=["stage1", "stage2"])``.

    Parameters
    ----------
    config
        Architecture; default :class:`ModelConfig`.

    Raises
    ------
    TypeError
        For a ``config`` that is neither a :class:`ModelConfig` nor ``None``.
    ValueError
        For stages whose weights would not fit in memory.

    Examples
    --------
    >>> import torch, lcl
    >>> m = lcl.V1V2()
    >>> m.receptive_field(1), m.receptive_field(2)
    (20, 38)
    >>> m.cumulative_stride(2)
    4
    >>> tuple(m(torch.rand(1, 1, 64, 64)).shape)
    (1, 128, 7, 7)
    """

    def __init__(self, config: ModelConfig | None = None):
        check_instance("config", config, ModelConfig, none=True)
        super().__init__()
        self.config = ModelConfig() if config is None else config
        self.stage1 = Stage(self.config.in_channels, self.config.stage1, whiten=self.config.whiten)
        self.stage2 = Stage(self.config.stage1.channels, self.config.stage2)

    @property
    def stages(self) -> list[Stage]:
        """The stages in order."""
        return [self.stage1, self.stage2]

    def _check_stage(self, stage: int) -> None:
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage!r}")

    def rf(self, stage: int) -> ReceptiveField:
        """Receptive-field size and cumulative stride of ``stage`` (1 or 2), in input pixels."""
        self._check_stage(stage)
        field = ReceptiveField(1, 1)
        for s in self.stages[:stage]:
            field = s.receptive_field(field)
        return field

    def receptive_field(self, stage: int) -> int:
        """Receptive-field side of one output unit of ``stage``, in input pixels.

        Computed by composing (kernel, stride) of every convolution, pooling and blur-downsampling layer:
        ``rf += (kernel - 1) * jump; jump *= stride``.
        """
        return self.rf(stage).size

    def cumulative_stride(self, stage: int) -> int:
        """Distance in input pixels between neighbouring output units of ``stage``."""
        return self.rf(stage).stride

    def output_size(self, size: int, stage: int) -> int:
        """Spatial side of ``stage``'s output for a square input of side ``size`` (0 if too small)."""
        self._check_stage(stage)
        for s in self.stages[:stage]:
            size = s.output_size(size)
        return size

    def features(self, x: torch.Tensor, stage: int = 2) -> torch.Tensor:
        """Output of ``stage`` (1 or 2) for images ``x`` of shape (batch, in_channels, y, x)."""
        self._check_stage(stage)
        for s in self.stages[:stage]:
            x = s(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage2(self.stage1(x))
