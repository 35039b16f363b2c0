"""Smooth random deformations: low-passed Gaussian displacement fields applied with ``grid_sample``."""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
import torch.nn.functional as F

__all__ = ["DeformConfig", "random_displacement", "warp", "deform", "rms_displacement", "noise_shape",
           "displacement_from_noise"]

_MATCHING = ("rf", "fixed")
_PADDING = ("reflection", "border", "zeros")


@dataclasses.dataclass(frozen=True)
class DeformConfig:
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

    def __post_init__(self) -> None:
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

    Examples
    --------
    >>> import torch, lcl
    >>> g = torch.Generator().manual_seed(0)
    >>> d = lcl.random_displacement(4, 32, 32, amplitude=2.0, smoothness=4.0, generator=g)
    >>> tuple(d.shape), [round(float(r), 4) for r in lcl.rms_displacement(d)]
    ((4, 32, 32, 2), [2.0, 2.0, 2.0, 2.0])
    """
    if amplitude < 0 or not math.isfinite(amplitude):
        raise ValueError(f"amplitude must be a finite number >= 0, got {amplitude!r}")
    if smoothness <= 0 or not math.isfinite(smoothness):
        raise ValueError(f"smoothness must be a finite number > 0, got {smoothness!r}")
    noise = torch.randn(batch, *noise_shape(height, width, smoothness), generator=generator)
    return displacement_from_noise(noise, height, width, amplitude, smoothness, device=device, dtype=dtype)


def noise_shape(height: int, width: int, smoothness: float) -> tuple[int, int, int]:
    """Shape (2, coarse_y, coarse_x) of the white noise behind one displacement field.

    Examples
    --------
    >>> import lcl
    >>> lcl.noise_shape(48, 48, 10.0)
    (2, 24, 24)
    """
    return (2, _field_matrix(height, float(smoothness)).shape[1], _field_matrix(width, float(smoothness)).shape[1])


def displacement_from_noise(noise: torch.Tensor, height: int, width: int, amplitude: float, smoothness: float, *,
                            device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
                            ) -> torch.Tensor:
    """Displacement fields (batch, height, width, 2) from white noise of shape (batch, *noise_shape(...)).

    The deterministic half of :func:`random_displacement`: low-pass, interpolate, rescale to RMS ``amplitude``.
    Drawing the noise separately lets distributed runs draw one global batch of noise and each process use its
    slice.

    Examples
    --------
    >>> import torch, lcl
    >>> noise = torch.randn(3, *lcl.noise_shape(16, 16, 4.0))
    >>> d = lcl.displacement_from_noise(noise, 16, 16, amplitude=1.0, smoothness=4.0)
    >>> tuple(d.shape), round(float(lcl.rms_displacement(d)[0]), 4)
    ((3, 16, 16, 2), 1.0)
    """
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

    Examples
    --------
    >>> import torch, lcl
    >>> lcl.rms_displacement(torch.full((1, 4, 4, 2), 3.0))
    tensor([4.2426])
    """
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

    Examples
    --------
    >>> import torch, lcl
    >>> x = torch.arange(16.0).view(1, 1, 4, 4)
    >>> d = torch.zeros(1, 4, 4, 2); d[..., 0] = 1.0  # sample one pixel to the right
    >>> lcl.warp(x, d)[0, 0, 0].tolist()
    [1.0, 2.0, 3.0, 2.0]
    """
    if padding not in _PADDING:
        raise ValueError(f"padding must be one of {_PADDING}, got {padding!r}")
    b, _, h, w = images.shape
    if displacement.shape != (b, h, w, 2):
        raise ValueError(f"displacement must have shape {(b, h, w, 2)}, got {tuple(displacement.shape)}")
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
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(int(seed))
    if amplitude == 0:
        return images.clone()
    b, _, h, w = images.shape
    d = random_displacement(b, h, w, amplitude, smoothness, generator=generator, device=images.device,
                            dtype=images.dtype)
    return warp(images, d, padding=padding)
