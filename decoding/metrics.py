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

from data._checks import check_array, check_float

__all__ = ["mse", "psnr", "ssim"]


def _as_array(name: str, images: Any) -> np.ndarray:
    if isinstance(images, xr.Dataset):
        if "image" not in images:
            raise ValueError(f"a Dataset passed as images needs an 'image' variable, it has {list(images.data_vars)}")
        images = images["image"]
    if isinstance(images, xr.DataArray):
        images = images.values
    return check_array(name, images, finite=False, min_size=0)


def _pair(reference: Any, reconstruction: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    a = _as_array("reference", reference)
    b = _as_array("reconstruction", reconstruction)
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
    return check_float("data_range", data_range, low=0.0, low_open=True)


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
    out = _mean_squared_error(a, b)
    return float(out[0]) if single else out


def _mean_squared_error(a: np.ndarray, b: np.ndarray, unit: float = 1.0) -> np.ndarray:
    """Per-image mean of ``((a - b) / unit)^2`` over ``(n, y, x)`` batches."""
    diff = a - b if unit == 1.0 else (a - b) / unit
    return (diff ** 2).mean(axis=(1, 2))


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
    a, b, single = _pair(reference, reconstruction)
    # -10 log10 of the MSE of the images in units of data_range: equal to 10 log10(range^2 / MSE), without the
    # overflow of range^2 or of the squared errors for data at a huge scale (PSNR is scale-invariant)
    err = _mean_squared_error(a, b, data_range)
    with np.errstate(divide="ignore"):
        out = -10.0 * np.log10(err)
    return float(out[0]) if single else out


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
    if data_range != 1.0:  # SSIM is invariant to scaling images and range together; (range)^2 would overflow
        a, b, data_range = a / data_range, b / data_range, 1.0
    out = np.array([structural_similarity(x, y, data_range=data_range, **kwargs) for x, y in zip(a, b)])
    return float(out[0]) if single else out
