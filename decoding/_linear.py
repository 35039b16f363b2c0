"""Stage 1: ridge regression from spike counts (+ bias) to pixels, in closed form; and the point-wise baseline."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

import data
from data._checks import check_array, check_bool, check_choice, check_device, check_float, check_int, check_seed

__all__ = ["LinearDecoder", "PointwiseNonlinearity", "validate_counts"]


def validate_counts(counts: Any) -> np.ndarray:
    """Check spike counts (an assembly or an array ``(n_images, n_cells)``); return them as a numpy array.

    Parameters
    ----------
    counts
        Assembly ``(presentation, neuroid)`` or a 2-D numeric array / tensor, finite.

    Returns
    -------
    numpy.ndarray
        ``(n_images, n_cells)``.

    Raises
    ------
    TypeError
        For an unsupported type or non-numeric values.
    ValueError
        For a wrong shape, an empty batch or NaN/inf.

    Examples
    --------
    >>> import numpy as np
    >>> from decoding import validate_counts
    >>> validate_counts(np.ones((3, 5))).shape
    (3, 5)
    """
    if isinstance(counts, xr.DataArray):
        if counts.ndim == 3:
            raise ValueError("counts with a time_bin dim: sum over time bins first")
        data.validate_assembly(counts)
        arr = counts.values
    elif isinstance(counts, torch.Tensor):
        arr = counts.detach().cpu().numpy()
    elif isinstance(counts, np.ndarray):
        arr = counts
    else:
        raise TypeError(f"counts must be an assembly, a numpy array or a tensor, got {type(counts).__name__}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"counts must be real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"counts must have shape (n_images, n_cells), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"empty counts of shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError("counts contain NaN or inf values")
    return arr


def _targets(images: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Images as ``(n, y, x)`` float array (stimulus set, array or tensor) and stimulus ids if known."""
    if isinstance(images, xr.Dataset):
        data.validate_stimuli(images)
        if "channel" in images["image"].dims:
            raise ValueError("the decoder reconstructs grayscale images; this stimulus set has a 'channel' dim")
        return images["image"].values, images["stimulus_id"].values
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a stimulus set, an array or a tensor, got {type(images).__name__}")
    if not np.issubdtype(images.dtype, np.number) or np.iscomplexobj(images):
        raise TypeError(f"images must be real numbers, got dtype {images.dtype}")
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n, y, x), got shape {images.shape}")
    if images.shape[0] == 0:
        raise ValueError("empty batch: no images given")
    if not np.isfinite(images).all():
        raise ValueError("images contain NaN or inf values")
    return images, None


class LinearDecoder:
    """Ridge regression from spike counts to every pixel, with an unpenalised bias, solved in closed form.

    ``W = (Rc^T Rc + lambda I)^{-1} Rc^T Xc`` with ``Rc``, ``Xc`` the centred counts and images and
    ``lambda = alpha * trace(Rc^T Rc) / n_cells`` (so ``alpha`` does not depend on the count scale). The normal
    equations are accumulated in blocks of ``chunk_size`` samples (products in ``dtype``, sums in float64) and
    solved in float64 by Cholesky; ``alpha=0`` uses the pseudo-inverse (minimum-norm least squares).

    Parameters
    ----------
    alpha
        Relative ridge penalty (>= 0).
    chunk_size
        Samples per block (memory only).
    dtype
        ``"float32"`` or ``"float64"`` for the block products and for predictions.
    device
        Torch device for the linear algebra.
    progress
        Show a progress bar while accumulating.

    Raises
    ------
    TypeError, ValueError
        From the constructor (and again from :meth:`fit`), naming the parameter: ``alpha`` not a finite number
        ``>= 0``, ``chunk_size`` not a positive integer, an unknown ``dtype`` or ``device``, a non-bool
        ``progress``.

    Attributes
    ----------
    coef_ : numpy.ndarray
        ``(n_cells, n_pixels)`` decoding weights (one image-shaped filter per cell).
    intercept_ : numpy.ndarray
        ``(n_pixels,)``: predictions are ``counts @ coef_ + intercept_``.
    image_mean_ : numpy.ndarray
        Mean training image ``(n_pixels,)`` (predictions are computed as
        ``(counts - count_mean_) @ coef_ + image_mean_``, which is the same, with less rounding).
    count_mean_ : numpy.ndarray
        Mean training counts ``(n_cells,)``.
    image_shape_ : tuple of int
    lambda_ : float
        The absolute penalty used.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from decoding import LinearDecoder
    >>> rng = np.random.default_rng(0)
    >>> images = rng.random((50, 4, 4))
    >>> counts = images.reshape(50, 16) @ rng.normal(size=(16, 20)) + 3.0
    >>> dec = LinearDecoder(alpha=0.0, dtype="float64").fit(counts, images)
    >>> float(np.abs(dec.predict(counts) - images).max()) < 1e-8
    True
    """

    def __init__(self, alpha: float = 0.05, *, chunk_size: int = 1024, dtype: str = "float32",
                 device: str | torch.device = "cpu", progress: bool = False) -> None:
        self.alpha = alpha
        self.chunk_size = chunk_size
        self.dtype = dtype
        self.device = device
        self.progress = progress
        self._check_params()

    def _check_params(self) -> torch.dtype:
        check_float("alpha", self.alpha, low=0.0)
        check_int("chunk_size", self.chunk_size, low=1)
        check_choice("dtype", self.dtype, ("float32", "float64"))
        check_device("device", self.device)
        check_bool("progress", self.progress)
        return torch.float32 if self.dtype == "float32" else torch.float64

    def fit(self, counts: Any, images: Any) -> LinearDecoder:
        """Fit the decoder.

        Parameters
        ----------
        counts
            Assembly or array ``(n_images, n_cells)``.
        images
            Stimulus set or array ``(n_images, y, x)``; when both are xarray objects their ``stimulus_id``
            must agree, in order.

        Returns
        -------
        LinearDecoder
            ``self``.

        Raises
        ------
        ValueError
            For mismatched sizes or ids, NaN, empty input.

        Examples
        --------
        >>> import numpy as np
        >>> from decoding import LinearDecoder
        >>> dec = LinearDecoder().fit(np.random.default_rng(0).poisson(4, (30, 10)), np.zeros((30, 2, 2)))
        >>> dec.coef_.shape
        (10, 4)
        """
        dtype = self._check_params()
        r = validate_counts(counts)
        x, ids = _targets(images)
        if len(r) != len(x):
            raise ValueError(f"{len(r)} count rows but {len(x)} images")
        if ids is not None and isinstance(counts, xr.DataArray):
            if not np.array_equal(counts["stimulus_id"].values.astype(str), ids.astype(str)):
                raise ValueError("counts and images have different stimulus_id (order must match)")
        n, n_cells = r.shape
        self.image_shape_ = tuple(int(s) for s in x.shape[1:])
        x = x.reshape(n, -1)
        dev = torch.device(self.device)
        f64 = torch.float64
        # Means in float64 first, so that every block is centred exactly (no cancellation in float32).
        r_mean = torch.zeros(n_cells, dtype=f64, device=dev)
        x_mean = torch.zeros(x.shape[1], dtype=f64, device=dev)
        for s in range(0, n, self.chunk_size):
            r_mean += torch.as_tensor(r[s:s + self.chunk_size], device=dev).to(f64).sum(0)
            x_mean += torch.as_tensor(x[s:s + self.chunk_size], device=dev).to(f64).sum(0)
        r_mean /= n
        x_mean /= n
        gram = torch.zeros(n_cells, n_cells, dtype=f64, device=dev)
        cross = torch.zeros(n_cells, x.shape[1], dtype=f64, device=dev)
        for s in tqdm(range(0, n, self.chunk_size), desc="ridge", unit="block", disable=not self.progress):
            rc = (torch.as_tensor(r[s:s + self.chunk_size], device=dev).to(f64) - r_mean).to(dtype)
            xc = (torch.as_tensor(x[s:s + self.chunk_size], device=dev).to(f64) - x_mean).to(dtype)
            gram += (rc.T @ rc).to(f64)
            cross += (rc.T @ xc).to(f64)
        lam = float(self.alpha) * float(torch.trace(gram)) / n_cells
        if lam > 0:
            gram.diagonal().add_(lam)
            chol, info = torch.linalg.cholesky_ex(gram)
            if int(info) != 0:
                raise ValueError(f"the regularised count covariance is not positive definite (alpha={self.alpha})")
            coef = torch.cholesky_solve(cross, chol)
        else:
            coef = torch.linalg.pinv(gram, hermitian=True) @ cross
        self.lambda_ = lam
        self.coef_ = coef.to(dtype).cpu().numpy()
        self.count_mean_ = r_mean.cpu().numpy()
        self.image_mean_ = x_mean.to(dtype).cpu().numpy()
        self.intercept_ = (x_mean - r_mean @ coef).to(dtype).cpu().numpy()
        self.n_features_in_ = n_cells
        return self

    def predict(self, counts: Any, *, batch_size: int = 1024) -> np.ndarray:
        """Reconstruct images from counts.

        Parameters
        ----------
        counts
            Assembly or array ``(n_images, n_cells)``.
        batch_size
            Images per block (a positive integer).

        Returns
        -------
        numpy.ndarray
            ``(n_images, y, x)`` (not clipped to [0, 1]).

        Raises
        ------
        RuntimeError
            Before :meth:`fit`.
        TypeError
            For a ``batch_size`` that is not an integer, counts that are not real numbers.
        ValueError
            For a wrong number of cells, a ``batch_size < 1``.

        Examples
        --------
        >>> import numpy as np
        >>> from decoding import LinearDecoder
        >>> rng = np.random.default_rng(0)
        >>> dec = LinearDecoder().fit(rng.poisson(4, (30, 10)), rng.random((30, 2, 2)))
        >>> dec.predict(rng.poisson(4, (5, 10))).shape
        (5, 2, 2)
        """
        batch_size = check_int("batch_size", batch_size, low=1)
        if not hasattr(self, "coef_"):
            raise RuntimeError("LinearDecoder is not fitted; call fit first")
        r = validate_counts(counts)
        if r.shape[1] != self.n_features_in_:
            raise ValueError(f"counts have {r.shape[1]} cells; the decoder was fitted on {self.n_features_in_}")
        dtype = self._check_params()
        dev = torch.device(self.device)
        coef = torch.as_tensor(self.coef_, device=dev)
        mean = torch.as_tensor(self.count_mean_, device=dev).to(dtype)
        bias = torch.as_tensor(self.image_mean_, device=dev)  # predictions: (r - count_mean_) @ coef_ + image mean
        out = np.empty((len(r), int(np.prod(self.image_shape_))), dtype=self.coef_.dtype)
        with torch.no_grad():
            for s in range(0, len(r), batch_size):
                rc = torch.as_tensor(r[s:s + batch_size], device=dev).to(dtype) - mean
                out[s:s + batch_size] = (rc @ coef + bias).cpu().numpy()
        return out.reshape(len(r), *self.image_shape_)


class PointwiseNonlinearity:
    """The point-wise baseline: one monotone non-decreasing function applied to every pixel of a reconstruction.

    Fitted by isotonic regression of true pixel values on reconstructed ones (with outputs bounded to [0, 1]),
    then applied by linear interpolation between the fitted knots, constant beyond them.

    Parameters
    ----------
    max_samples
        Pixel pairs used for the fit (a seeded random subset when there are more).
    seed
        Seed of the subset.

    Attributes
    ----------
    knots_x_, knots_y_ : numpy.ndarray
        The fitted monotone function.

    Examples
    --------
    >>> import numpy as np
    >>> from decoding import PointwiseNonlinearity
    >>> x = np.linspace(-1, 2, 300).reshape(3, 10, 10)
    >>> f = PointwiseNonlinearity().fit(x, np.clip(x, 0, 1))
    >>> float(np.abs(f.transform(x) - np.clip(x, 0, 1)).max()) < 0.02
    True
    """

    def __init__(self, max_samples: int = 500_000, *, seed: int = 0) -> None:
        self.max_samples = max_samples
        self.seed = seed
        check_int("max_samples", max_samples, low=1)
        check_seed("seed", seed)

    def fit(self, reconstructions: Any, images: Any) -> PointwiseNonlinearity:
        """Fit the monotone function from reconstructions to true images.

        Parameters
        ----------
        reconstructions
            Array ``(n, y, x)`` (e.g. linear reconstructions).
        images
            The true images, same shape (array or stimulus set).

        Returns
        -------
        PointwiseNonlinearity
            ``self``.

        Examples
        --------
        >>> import numpy as np
        >>> from decoding import PointwiseNonlinearity
        >>> f = PointwiseNonlinearity().fit(np.zeros((1, 2, 2)), np.full((1, 2, 2), 0.5))
        >>> f.transform(np.ones((1, 2, 2))).tolist()
        [[[0.5, 0.5], [0.5, 0.5]]]
        """
        from sklearn.isotonic import IsotonicRegression

        check_int("max_samples", self.max_samples, low=1)
        check_seed("seed", self.seed)
        rec, _ = _targets(np.asarray(reconstructions) if not isinstance(reconstructions, xr.Dataset)
                          else reconstructions)
        img, _ = _targets(images)
        if rec.shape != img.shape:
            raise ValueError(f"reconstructions {rec.shape} and images {img.shape} differ in shape")
        a, b = rec.reshape(-1).astype(np.float64), img.reshape(-1).astype(np.float64)
        if a.size > self.max_samples:
            idx = np.random.default_rng(self.seed).choice(a.size, self.max_samples, replace=False)
            a, b = a[idx], b[idx]
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(a, b)
        self.knots_x_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
        self.knots_y_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        return self

    def transform(self, reconstructions: Any) -> np.ndarray:
        """Apply the fitted function to every pixel.

        Parameters
        ----------
        reconstructions
            Array of any shape.

        Returns
        -------
        numpy.ndarray
            Same shape, float32.

        Examples
        --------
        >>> import numpy as np
        >>> from decoding import PointwiseNonlinearity
        >>> f = PointwiseNonlinearity().fit(np.array([[[0.0, 1.0]]]), np.array([[[0.2, 0.8]]]))
        >>> f.transform(np.array([0.5])).round(3).tolist()
        [0.5]
        """
        if not hasattr(self, "knots_x_"):
            raise RuntimeError("PointwiseNonlinearity is not fitted; call fit first")
        x = check_array("reconstructions", reconstructions)
        return np.interp(x, self.knots_x_, self.knots_y_).astype(np.float32)
