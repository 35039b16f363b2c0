"""Smooth random deformations: low-passed Gaussian displacement fields applied with ``grid_sample``."""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
import torch.nn.functional as F

import data
from data._checks import (check_choice, check_device, check_float, check_instance, check_int, check_nbytes,
                          check_seed, check_tensor, check_torch_dtype)

__all__ = ["DeformConfig", "random_displacement", "warp", "deform", "rms_displacement", "noise_shape",
           "displacement_from_noise"]

_MATCHING = ("rf", "fixed")
_PADDING = ("reflection", "border", "zeros")
#: Largest side (pixels) of a displacement field: the two (side x side) float64 matrices behind one field
#: (:func:`_field_matrix`) need about 24 * side**2 bytes and side**3 operations to build.
MAX_SIDE = 2 ** 14
#: Largest RMS displacement (pixels) of a field: beyond it float32 sampling grids lose whole pixels.
MAX_AMPLITUDE = 1e6


@dataclasses.dataclass(frozen=True)
class DeformConfig(data.Config):
    """How the two views of a patch are deformed at each stage (complexity matching).

    *Amplitude* is the root-mean-square displacement over all pixels of a field, in input pixels:
    ``sqrt(mean(dx^2 + dy^2)) = amplitude * RF``, where RF is the receptive-field side of the stage being
    trained. Every sampled field is rescaled to exactly this RMS. *Smoothness* is the standard deviation of the
    Gaussian low-pass applied to white noise to make the field, also in units of the stage's RF.

    Parameters
    ----------
    amplitude
        RMS displacement as a fraction of the receptive field (>= 0; 0 gives identical views).
    smoothness
        Correlation length (Gaussian std) of the field as a fraction of the receptive field (> 0).
    matching
        ``"rf"``: each stage uses its own receptive field (complexity matching, the method);
        ``"fixed"``: both stages use the receptive field of ``reference_stage`` (the ablation: same amplitude
        and smoothness in pixels for both stages).
    reference_stage
        The stage whose receptive field sets the pixels under ``matching="fixed"`` (1 or 2).
    padding
        ``grid_sample`` padding mode for samples falling outside the patch.
    stage_scale
        Multiplies the amplitude of stage 1 and of stage 2 (default ``(1, 1)``): a sweep of the stage-2 value
        (e.g. 0.5, 1, 2, 4) turns the effect of complexity matching into a curve.

    Examples
    --------
    >>> import lcl
    >>> cfg = lcl.DeformConfig(amplitude=0.1, smoothness=0.5)
    >>> cfg.pixels(rf_sizes=(13, 31), stage=2)
    (3.1, 15.5)
    >>> lcl.DeformConfig(amplitude=0.1, matching="fixed").pixels(rf_sizes=(13, 31), stage=2)
    (1.3, 6.5)
    >>> lcl.DeformConfig(amplitude=0.1, stage_scale=(1.0, 2.0)).pixels(rf_sizes=(13, 31), stage=2)
    (6.2, 15.5)
    >>> lcl.DeformConfig(amplitude=-1)
    Traceback (most recent call last):
    ...
    ValueError: DeformConfig.amplitude must be a finite number >= 0, got -1
    """

    amplitude: float = 0.1
    smoothness: float = 0.5
    matching: str = "rf"
    reference_stage: int = 1
    padding: str = "reflection"
    stage_scale: tuple[float, float] = (1.0, 1.0)

    def validate(self) -> None:
        if not isinstance(self.stage_scale, (tuple, list)) or len(self.stage_scale) != 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                for v in self.stage_scale):
            raise ValueError(f"DeformConfig.stage_scale must be two finite numbers >= 0, got {self.stage_scale!r}")
        object.__setattr__(self, "stage_scale", tuple(float(v) for v in self.stage_scale))
        if isinstance(self.amplitude, bool) or not isinstance(self.amplitude, (int, float)) \
                or not math.isfinite(self.amplitude) or self.amplitude < 0:
            raise ValueError(f"DeformConfig.amplitude must be a finite number >= 0, got {self.amplitude!r}")
        if isinstance(self.smoothness, bool) or not isinstance(self.smoothness, (int, float)) \
                or not math.isfinite(self.smoothness) or self.smoothness <= 0:
            raise ValueError(f"DeformConfig.smoothness must be a finite number > 0, got {self.smoothness!r}")
        if self.matching not in _MATCHING:
            raise ValueError(f"DeformConfig.matching must be one of {_MATCHING}, got {self.matching!r}")
        if self.reference_stage not in (1, 2) or isinstance(self.reference_stage, bool):
            raise ValueError(f"DeformConfig.reference_stage must be 1 or 2, got {self.reference_stage!r}")
        if self.padding not in _PADDING:
            raise ValueError(f"DeformConfig.padding must be one of {_PADDING}, got {self.padding!r}")

    def pixels(self, rf_sizes: tuple[int, int], stage: int) -> tuple[float, float]:
        """(RMS amplitude, smoothness) in input pixels for training ``stage`` given the stages' RF sides."""
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage!r}")
        rf = rf_sizes[(stage if self.matching == "rf" else self.reference_stage) - 1]
        return float(self.amplitude * self.stage_scale[stage - 1] * rf), float(self.smoothness * rf)


def _gaussian_kernel(sigma: float, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(dtype)


@functools.lru_cache(maxsize=64)
def _field_matrix(n: int, smoothness: float) -> torch.Tensor:
    """(n, m) matrix mapping m coarse white-noise samples to a low-passed field at n pixels along one axis.

    Coarse samples are ``step = max(1, smoothness / 2)`` pixels apart (fine enough that the Gaussian spectrum is
    negligible beyond their Nyquist frequency); the matrix is the separable Gaussian low-pass (std ``smoothness``
    pixels, "valid", so no border effects) followed by linear interpolation to the pixels.
    """
    step = max(1.0, smoothness / 2.0)
    kernel = _gaussian_kernel(smoothness / step, torch.float64)
    taps = kernel.numel()
    coarse = int(math.ceil((n - 1) / step)) + 2
    blur = torch.zeros(coarse, coarse + taps - 1, dtype=torch.float64)
    for i in range(coarse):
        blur[i, i:i + taps] = kernel
    pos = torch.arange(n, dtype=torch.float64) / step
    lo = pos.floor().long()
    frac = pos - lo
    interp = torch.zeros(n, coarse, dtype=torch.float64)
    interp[torch.arange(n), lo] = 1 - frac
    interp[torch.arange(n), lo + 1] += frac
    return (interp @ blur).float()


def _check_field(height: object, width: object, amplitude: object, smoothness: object
                 ) -> tuple[int, int, float | None, float]:
    """Checked (height, width, amplitude, smoothness) of displacement fields (``amplitude=None``: not given)."""
    height = check_int("height", height, low=1, high=MAX_SIDE)
    width = check_int("width", width, low=1, high=MAX_SIDE)
    if amplitude is not None:
        amplitude = check_float("amplitude", amplitude, low=0.0, high=MAX_AMPLITUDE)
    smoothness = check_float("smoothness", smoothness, low=0.0, low_open=True)
    return height, width, amplitude, smoothness


def _coarse(n: int, smoothness: float) -> int:
    """Number of white-noise samples behind ``n`` pixels: ``_field_matrix(n, smoothness).shape[1]``, without
    building the matrix."""
    step = max(1.0, smoothness / 2.0)
    radius = max(1, int(math.ceil(3.0 * (smoothness / step))))
    return int(math.ceil((n - 1) / step)) + 2 + 2 * radius


def _check_batch_memory(batch: int, height: int, width: int, smoothness: float) -> None:
    cy, cx = _coarse(height, smoothness), _coarse(width, smoothness)
    check_nbytes("batch", batch, 4.0 * batch * 2 * (cy * cx + height * cx + 3 * height * width),
                 what=f"{batch} displacement fields of {height}x{width} pixels")


def random_displacement(batch: int, height: int, width: int, amplitude: float, smoothness: float, *,
                        generator: torch.Generator | None = None, device: torch.device | str | None = None,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Smooth random displacement fields in pixels, each with RMS displacement exactly ``amplitude``.

    White Gaussian noise is drawn on a coarse grid (spacing ``smoothness / 2`` pixels, fine enough for the
    Gaussian spectrum to be negligible beyond Nyquist), low-passed with a separable Gaussian of std
    ``smoothness`` pixels (without border effects) and interpolated linearly to the pixels -- both as two small
    matrix products per field -- then rescaled so that ``sqrt(mean over pixels of dx^2 + dy^2) == amplitude``
    for every field. The noise is drawn on the CPU from ``generator`` (a seed gives the same fields on any
    device).

    Parameters
    ----------
    batch, height, width
        Number and size of fields.
    amplitude
        RMS displacement in pixels (>= 0).
    smoothness
        Standard deviation of the Gaussian low-pass in pixels (> 0).
    generator
        CPU ``torch.Generator`` for reproducibility (default: the global RNG).
    device, dtype
        Where and in which precision to return the fields.

    Returns
    -------
    torch.Tensor
        Shape (batch, height, width, 2): displacement (dx, dy) in pixels.

    Raises
    ------
    TypeError
        For a ``batch``, ``height`` or ``width`` that is not an integer, an ``amplitude`` or ``smoothness`` that
        is not a real number, a ``generator`` that is not a ``torch.Generator``, a ``device`` that is not a
        device name or ``torch.device``, a ``dtype`` that is not a ``torch.dtype``.
    ValueError
        For a negative ``batch``, a ``height`` or ``width`` outside ``[1, MAX_SIDE]`` (16384), an ``amplitude``
        outside ``[0, MAX_AMPLITUDE]`` (1e6 pixels) or NaN, a ``smoothness`` that is not a finite number > 0, an
        unknown device, an integer ``dtype``, fields that would not fit in memory.

    Examples
    --------
    >>> import torch, lcl
    >>> g = torch.Generator().manual_seed(0)
    >>> d = lcl.random_displacement(4, 32, 32, amplitude=2.0, smoothness=4.0, generator=g)
    >>> tuple(d.shape), [round(float(r), 4) for r in lcl.rms_displacement(d)]
    ((4, 32, 32, 2), [2.0, 2.0, 2.0, 2.0])
    """
    batch = check_int("batch", batch, low=0)
    height, width, amplitude, smoothness = _check_field(height, width, amplitude, smoothness)
    check_instance("generator", generator, torch.Generator, none=True)
    device = check_device("device", device, none=True)
    dtype = check_torch_dtype("dtype", dtype)
    _check_batch_memory(batch, height, width, smoothness)
    noise = torch.randn(batch, *noise_shape(height, width, smoothness), generator=generator)
    return _displacement_from_noise(noise, height, width, amplitude, smoothness, device=device, dtype=dtype)


def noise_shape(height: int, width: int, smoothness: float) -> tuple[int, int, int]:
    """Shape (2, coarse_y, coarse_x) of the white noise behind one displacement field.

    Raises
    ------
    TypeError
        For a ``height`` or ``width`` that is not an integer, a ``smoothness`` that is not a real number.
    ValueError
        For a ``height`` or ``width`` outside ``[1, MAX_SIDE]`` (16384), a ``smoothness`` that is not a finite
        number > 0.

    Examples
    --------
    >>> import lcl
    >>> lcl.noise_shape(48, 48, 10.0)
    (2, 24, 24)
    """
    height, width, _, smoothness = _check_field(height, width, None, smoothness)
    return (2, _coarse(height, smoothness), _coarse(width, smoothness))


def displacement_from_noise(noise: torch.Tensor, height: int, width: int, amplitude: float, smoothness: float, *,
                            device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
                            ) -> torch.Tensor:
    """Displacement fields (batch, height, width, 2) from white noise of shape (batch, *noise_shape(...)).

    The deterministic half of :func:`random_displacement`: low-pass, interpolate, rescale to RMS ``amplitude``.
    Drawing the noise separately lets distributed runs draw one global batch of noise and each process use its
    slice.

    Raises
    ------
    TypeError
        For ``noise`` that is not a floating-point ``torch.Tensor``, a ``height`` or ``width`` that is not an
        integer, an ``amplitude`` or ``smoothness`` that is not a real number, a ``device`` that is not a device
        name or ``torch.device``, a ``dtype`` that is not a ``torch.dtype``.
    ValueError
        For ``noise`` of the wrong shape or holding NaN/inf, a ``height`` or ``width`` outside
        ``[1, MAX_SIDE]``, an ``amplitude`` outside ``[0, MAX_AMPLITUDE]``, a ``smoothness`` that is not a finite
        number > 0, an unknown device, an integer ``dtype``.

    Examples
    --------
    >>> import torch, lcl
    >>> noise = torch.randn(3, *lcl.noise_shape(16, 16, 4.0))
    >>> d = lcl.displacement_from_noise(noise, 16, 16, amplitude=1.0, smoothness=4.0)
    >>> tuple(d.shape), round(float(lcl.rms_displacement(d)[0]), 4)
    ((3, 16, 16, 2), 1.0)
    """
    height, width, amplitude, smoothness = _check_field(height, width, amplitude, smoothness)
    check_tensor("noise", noise, ndim=4, min_size=0)
    want = (2, _coarse(height, smoothness), _coarse(width, smoothness))
    if tuple(noise.shape[1:]) != want:
        raise ValueError(f"noise must have shape (batch, {want[0]}, {want[1]}, {want[2]}), got {tuple(noise.shape)}")
    device = check_device("device", device, none=True)
    dtype = check_torch_dtype("dtype", dtype)
    _check_batch_memory(noise.shape[0], height, width, smoothness)
    return _displacement_from_noise(noise, height, width, amplitude, smoothness, device=device, dtype=dtype)


def _displacement_from_noise(noise: torch.Tensor, height: int, width: int, amplitude: float, smoothness: float, *,
                             device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
                             ) -> torch.Tensor:
    """:func:`displacement_from_noise` without the argument checks (the trainer's inner loop)."""
    ay = _field_matrix(height, float(smoothness))
    ax = _field_matrix(width, float(smoothness))
    if noise.shape[1:] != (2, ay.shape[1], ax.shape[1]):
        raise ValueError(f"noise must have shape (batch, 2, {ay.shape[1]}, {ax.shape[1]}), got {tuple(noise.shape)}")
    batch = noise.shape[0]
    dev = noise.device if device is None else torch.device(device)
    noise = noise.to(dev, torch.float32)
    field = ay.to(dev) @ noise @ ax.to(dev).T  # (batch, 2, height, width)
    rms = field.pow(2).sum(dim=1).mean(dim=(1, 2)).sqrt().clamp_min(1e-12)
    field = field * (amplitude / rms).view(batch, 1, 1, 1)
    return field.permute(0, 2, 3, 1).to(dtype).contiguous()


def rms_displacement(displacement: torch.Tensor) -> torch.Tensor:
    """RMS length of each displacement field (batch, y, x, 2) -> (batch,), in pixels.

    Raises
    ------
    TypeError
        For ``displacement`` that is not a floating-point ``torch.Tensor``.
    ValueError
        For ``displacement`` that is not (batch, y, x, 2) with y, x >= 1, or that holds NaN/inf.

    Examples
    --------
    >>> import torch, lcl
    >>> lcl.rms_displacement(torch.full((1, 4, 4, 2), 3.0))
    tensor([4.2426])
    """
    check_tensor("displacement", displacement, ndim=4, min_size=0)
    if displacement.shape[-1] != 2 or displacement.shape[1] < 1 or displacement.shape[2] < 1:
        raise ValueError(f"displacement must have shape (batch, y, x, 2) with y, x >= 1, got "
                         f"{tuple(displacement.shape)}")
    return displacement.pow(2).sum(dim=-1).mean(dim=(1, 2)).sqrt()


def _base_grid(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype) if height > 1 else torch.zeros(1)
    xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype) if width > 1 else torch.zeros(1)
    gy, gx = torch.meshgrid(ys.to(device, dtype), xs.to(device, dtype), indexing="ij")
    return torch.stack([gx, gy], dim=-1)


def warp(images: torch.Tensor, displacement: torch.Tensor, *, padding: str = "reflection") -> torch.Tensor:
    """Warp images by displacement fields: ``out(p) = images(p + d(p))`` with bilinear interpolation.

    Parameters
    ----------
    images
        (batch, channel, y, x).
    displacement
        (batch, y, x, 2) displacement (dx, dy) in pixels.
    padding
        ``grid_sample`` padding mode: ``"reflection"``, ``"border"`` or ``"zeros"``.

    Returns
    -------
    torch.Tensor
        Warped images, same shape as ``images``. A zero field returns the input up to float rounding of the
        sampling grid (about 1e-6 for float32 images in [0, 1]).

    Raises
    ------
    TypeError
        For ``images`` or ``displacement`` that is not a floating-point ``torch.Tensor``, a ``padding`` that is
        not a string.
    ValueError
        For ``images`` that are not a non-empty 4-D tensor, a ``displacement`` whose shape is not
        (batch, y, x, 2) of the images, NaN/inf values in either, an unknown ``padding``.

    Examples
    --------
    >>> import torch, lcl
    >>> x = torch.arange(16.0).view(1, 1, 4, 4)
    >>> d = torch.zeros(1, 4, 4, 2); d[..., 0] = 1.0  # sample one pixel to the right
    >>> lcl.warp(x, d)[0, 0, 0].tolist()
    [1.0, 2.0, 3.0, 2.0]
    """
    check_tensor("images", images, ndim=4)
    check_tensor("displacement", displacement, ndim=4, min_size=0)
    check_choice("padding", padding, _PADDING)
    b, _, h, w = images.shape
    if displacement.shape != (b, h, w, 2):
        raise ValueError(f"displacement must have shape {(b, h, w, 2)}, got {tuple(displacement.shape)}")
    return _warp(images, displacement, padding=padding)


def _warp(images: torch.Tensor, displacement: torch.Tensor, *, padding: str = "reflection") -> torch.Tensor:
    """:func:`warp` without the argument checks (the trainer's inner loop)."""
    b, _, h, w = images.shape
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=images.device, dtype=images.dtype)
    grid = _base_grid(h, w, images.device, images.dtype) + displacement.to(images.dtype) * scale
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding, align_corners=True)


def deform(images: torch.Tensor, amplitude: float, smoothness: float, *, generator: torch.Generator | None = None,
           seed: int | None = None, padding: str = "reflection") -> torch.Tensor:
    """Apply one independent smooth random deformation to each image (one ``grid_sample`` call).

    Parameters
    ----------
    images
        (batch, channel, y, x).
    amplitude
        RMS displacement in pixels (see :func:`random_displacement`); 0 is the identity warp.
    smoothness
        Gaussian std of the field's low-pass, in pixels.
    generator
        CPU ``torch.Generator`` (takes precedence over ``seed``).
    seed
        Seed for a fresh generator when ``generator`` is not given.
    padding
        ``grid_sample`` padding mode.

    Returns
    -------
    torch.Tensor
        Deformed images, same shape, device and dtype. ``amplitude == 0`` returns an exact copy of ``images``
        (the warp itself would reproduce them only up to float rounding of the sampling grid, ~1e-6).

    Raises
    ------
    TypeError
        For ``images`` that are not a floating-point ``torch.Tensor``, an ``amplitude`` or ``smoothness`` that is
        not a real number, a ``generator`` that is not a ``torch.Generator``, a ``seed`` that is not an integer,
        a ``padding`` that is not a string.
    ValueError
        For ``images`` that are not a non-empty 4-D tensor or hold NaN/inf, images larger than ``MAX_SIDE``
        (16384) pixels a side, an ``amplitude`` outside ``[0, MAX_AMPLITUDE]`` (1e6 pixels), a ``smoothness``
        that is not a finite number > 0, a negative ``seed``, an unknown ``padding``.

    Examples
    --------
    >>> import torch, lcl
    >>> x = torch.rand(2, 1, 32, 32)
    >>> y = lcl.deform(x, amplitude=1.5, smoothness=3.0, seed=0)
    >>> bool(torch.equal(y, lcl.deform(x, amplitude=1.5, smoothness=3.0, seed=0)))
    True
    >>> bool(torch.equal(lcl.deform(x, 0.0, 3.0, seed=0), x))
    True
    """
    check_tensor("images", images, ndim=4)
    b, _, h, w = images.shape
    if h > MAX_SIDE or w > MAX_SIDE:
        raise ValueError(f"images must be at most {MAX_SIDE} pixels a side, got shape {tuple(images.shape)}")
    amplitude = check_float("amplitude", amplitude, low=0.0, high=MAX_AMPLITUDE)
    smoothness = check_float("smoothness", smoothness, low=0.0, low_open=True)
    check_instance("generator", generator, torch.Generator, none=True)
    seed = check_seed("seed", seed, none=True)
    check_choice("padding", padding, _PADDING)
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(seed)
    if amplitude == 0:
        return images.clone()
    _check_batch_memory(b, h, w, smoothness)
    noise = torch.randn(b, *noise_shape(h, w, smoothness), generator=generator)
    d = _displacement_from_noise(noise, h, w, amplitude, smoothness, device=images.device, dtype=images.dtype)
    return _warp(images, d, padding=padding)
