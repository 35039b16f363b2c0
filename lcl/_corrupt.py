"""Image corruptions at graded severities (in the spirit of ImageNet-C), for grayscale images in [0, 1]."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from data._checks import check_int, check_str

__all__ = ["CORRUPTIONS", "corrupt"]

#: Corruption name -> parameter at severities 1..5 (noise std, blur std in px, contrast factor, impulse fraction,
#: pixelation block side in px).
CORRUPTIONS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.02, 0.04, 0.08, 0.12, 0.18),
    "gaussian_blur": (0.5, 1.0, 1.5, 2.0, 3.0),
    "contrast": (0.6, 0.4, 0.25, 0.15, 0.08),
    "salt_pepper": (0.01, 0.03, 0.06, 0.1, 0.2),
    "pixelate": (2, 3, 4, 6, 8),
}


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def corrupt(images: torch.Tensor, name: str, severity: int, *, generator: torch.Generator | None = None
            ) -> torch.Tensor:
    """Corrupt images (batch, channel, y, x) in [0, 1] at ``severity`` 0 (clean) to 5; result clipped to [0, 1].

    Parameters
    ----------
    images
        Batch of images in [0, 1].
    name
        One of :data:`CORRUPTIONS`: ``gaussian_noise`` (additive, std), ``gaussian_blur`` (std in pixels),
        ``contrast`` (deviations from each image's mean scaled by a factor), ``salt_pepper`` (fraction of pixels
        set to 0 or 1), ``pixelate`` (each block of ``b x b`` pixels replaced by its mean).
    severity
        0 returns the images unchanged; 1..5 as in :data:`CORRUPTIONS`.
    generator
        CPU generator for the random corruptions.

    Returns
    -------
    torch.Tensor

    Raises
    ------
    TypeError
        For ``images`` that are not a floating-point tensor, a non-string ``name``, a non-integer
        ``severity``, a ``generator`` that is not a ``torch.Generator``.
    ValueError
        For images that are not 4-D or hold NaN/inf, an unknown corruption, a severity outside 0..5.

    Examples
    --------
    >>> import torch, lcl
    >>> x = torch.full((1, 1, 8, 8), 0.5); x[..., 4:] = 1.0
    >>> y = lcl.corrupt(x, "contrast", 5)
    >>> round(float(y.std() / x.std()), 2)
    0.08
    >>> bool(torch.equal(lcl.corrupt(x, "gaussian_noise", 0), x))
    True
    """
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        kind = f"tensor of {images.dtype}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise TypeError(f"images must be a floating-point torch.Tensor (batch, channel, y, x), got {kind}")
    if images.ndim != 4 or images.numel() == 0:
        raise ValueError(f"images must be a non-empty (batch, channel, y, x) tensor, got shape {tuple(images.shape)}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or inf values")
    check_str("name", name)
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {sorted(CORRUPTIONS)}")
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 5:
        raise ValueError(f"severity must be an integer 0..5, got {severity!r}")
    check_int("severity", severity)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if severity == 0:
        return images.clone()
    p = CORRUPTIONS[name][severity - 1]
    x = images
    if name == "gaussian_noise":
        noise = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
        out = x + p * noise
    elif name == "gaussian_blur":
        out = _blur(x, p)
    elif name == "contrast":
        mean = x.mean(dim=(-2, -1), keepdim=True)
        out = mean + p * (x - mean)
    elif name == "salt_pepper":
        u = torch.rand(x.shape, generator=generator).to(x.device, x.dtype)
        out = torch.where(u < p / 2, torch.zeros_like(x), torch.where(u > 1 - p / 2, torch.ones_like(x), x))
    else:  # pixelate
        h, w = x.shape[-2:]
        b = int(p)
        small = F.avg_pool2d(x, b, stride=b, ceil_mode=True)
        out = small.repeat_interleave(b, dim=-2).repeat_interleave(b, dim=-1)[..., :h, :w]
    return out.clamp(0.0, 1.0)
