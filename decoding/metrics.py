"""Image-quality metrics, pure functions: MSE, PSNR and SSIM, per image.

Every function takes a reference and a reconstruction of the same shape, either one image ``(y, x)`` (returns a
float) or a batch ``(n, y, x)`` (returns an array of ``n`` values, one per image; average them yourself). A
stimulus set (``xarray.Dataset`` with an ``image`` variable) stands for its images.
``data_range`` is the range of the *reference* images' domain (1.0 for images in [0, 1]), never inferred from the
reconstruction, which may overshoot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["mse", "psnr", "ssim"]


def _as_array(images: Any) -> np.ndarray:
    if isinstance(images, xr.Dataset):
        if "image" not in images:
            raise ValueError(f"a Dataset passed as images needs an 'image' variable, it has {list(images.data_vars)}")
        images = images["image"]
    return np.asarray(images, dtype=np.float64)


def _pair(reference: Any, reconstruction: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    a = _as_array(reference)
    b = _as_array(reconstruction)
    if a.shape != b.shape:
        raise ValueError(f"reference {a.shape} and reconstruction {b.shape} differ in shape")
    if a.ndim not in (2, 3):
        raise ValueError(f"images must be (y, x) or (n, y, x), got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"empty images of shape {a.shape}")
    for name, v in (("reference", a), ("reconstruction", b)):
        if not np.isfinite(v).all():
            raise ValueError(f"{name} contains NaN or inf values")
    single = a.ndim == 2
    return (a[None], b[None], True) if single else (a, b, False)


def _check_range(data_range: float) -> float:
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not np.isfinite(data_range) \
            or data_range <= 0:
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    return float(data_range)


def mse(reference: Any, reconstruction: Any) -> float | np.ndarray:
    """Mean squared error per image.

    Parameters
    ----------
    reference, reconstruction
        ``(y, x)`` or ``(n, y, x)`` arrays of the same shape.

    Returns
    -------
    float or numpy.ndarray
        One value per image.

    Examples
    --------
    >>> import numpy as np
    >>> from decoding import metrics
    >>> metrics.mse(np.zeros((2, 2)), np.full((2, 2), 0.5))
    0.25
    """
    a, b, single = _pair(reference, reconstruction)
    out = ((a - b) ** 2).mean(axis=(1, 2))
    return float(out[0]) if single else out


def psnr(reference: Any, reconstruction: Any, *, data_range: float = 1.0) -> float | np.ndarray:
    """Peak signal-to-noise ratio per image, ``10 log10(data_range^2 / MSE)`` in dB (inf for a perfect match).

    Parameters
    ----------
    reference, reconstruction
        ``(y, x)`` or ``(n, y, x)`` arrays of the same shape.
    data_range
        Range of the images' domain (1.0 for [0, 1]).

    Returns
    -------
    float or numpy.ndarray
        One value per image.

    Examples
    --------
    >>> import numpy as np
    >>> from decoding import metrics
    >>> round(metrics.psnr(np.zeros((4, 4)), np.full((4, 4), 0.1)), 6)
    20.0
    """
    data_range = _check_range(data_range)
    err = np.asarray(mse(reference, reconstruction))
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(data_range ** 2 / err)
    return float(out) if out.ndim == 0 else out


def ssim(reference: Any, reconstruction: Any, *, data_range: float = 1.0, **kwargs: Any) -> float | np.ndarray:
    """Structural similarity per image (Wang et al. 2004), via ``skimage.metrics.structural_similarity``.

    Parameters
    ----------
    reference, reconstruction
        ``(y, x)`` or ``(n, y, x)`` arrays of the same shape (each side at least 7 pixels).
    data_range
        Range of the images' domain (1.0 for [0, 1]); passed explicitly, so reconstructions that overshoot
        [0, 1] are not rescaled.
    **kwargs
        Further options of scikit-image (e.g. ``gaussian_weights=True``).

    Returns
    -------
    float or numpy.ndarray
        One value per image, in [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from decoding import metrics
    >>> x = np.random.default_rng(0).random((16, 16))
    >>> metrics.ssim(x, x)
    1.0
    """
    from skimage.metrics import structural_similarity

    data_range = _check_range(data_range)
    a, b, single = _pair(reference, reconstruction)
    if min(a.shape[1:]) < 7:
        raise ValueError(f"SSIM needs images of at least 7 x 7 pixels, got {a.shape[1]} x {a.shape[2]}")
    out = np.array([structural_similarity(x, y, data_range=data_range, **kwargs) for x, y in zip(a, b)])
    return float(out[0]) if single else out
