"""A simulated primate retina: DoG mosaics sampled on regular grids, a static nonlinearity and Poisson spikes."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

import data
from data._checks import check_bool, check_int, check_seed

from ._retina_config import RetinaConfig

__all__ = ["Retina", "validate_images", "as_images"]

# Spike noise is drawn in fixed blocks of images, each from its own generator seeded by (seed, block index), so
# the counts of an image depend on the seed and its position only, never on the batch size or the thread count.
_NOISE_BLOCK = 64
# Neuroid coordinates an assembly already uses; stimulus metadata of the same name is renamed on presentation.
_PRESENTATION_RENAME = {"source": "source_image", "x": "stimulus_x", "y": "stimulus_y", "region": "stimulus_region",
                        "cell_type": "stimulus_cell_type", "polarity": "stimulus_polarity"}


def validate_images(images: Any, image_size: int | None = None) -> Any:
    """Check a batch of grayscale images for a retina; return it unchanged.

    Parameters
    ----------
    images
        A grayscale stimulus set (``image (stimulus_id, y, x)``), or a numpy array / torch tensor of shape
        ``(n, y, x)``, finite, with values in [0, 1].
    image_size
        Required side of the (square) images, if any.

    Returns
    -------
    The input.

    Raises
    ------
    TypeError
        For an unsupported type or non-numeric values.
    ValueError
        Naming the problem: empty batch, wrong number of dimensions, wrong or non-square shape, colour images,
        NaN/inf, values outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from decoding import validate_images
    >>> validate_images(np.zeros((2, 8, 8)), image_size=8).shape
    (2, 8, 8)
    >>> validate_images(np.zeros((2, 8, 8)), image_size=16)
    Traceback (most recent call last):
    ...
    ValueError: images must be 16 x 16 pixels, got 8 x 8
    """
    image_size = check_int("image_size", image_size, low=1, none=True)
    if isinstance(images, xr.Dataset):
        if "image" in images.data_vars and "channel" in images["image"].dims:
            raise ValueError("the retina takes grayscale images; this stimulus set has a 'channel' dim")
        data.validate_stimuli(images)
        arr = images["image"].values
    elif isinstance(images, torch.Tensor):
        if images.is_complex() or images.dtype == torch.bool or not (images.is_floating_point()
                                                                       or images.dtype in _INT_DTYPES):
            raise TypeError(f"images must be a real numeric tensor, got dtype {images.dtype}")
        arr = images
    elif isinstance(images, np.ndarray):
        if not (np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
            raise TypeError(f"images must be a real numeric array, got dtype {images.dtype}")
        arr = images
    else:
        raise TypeError(
            f"images must be a stimulus set, a numpy array or a torch tensor, got {type(images).__name__}"
        )
    shape = tuple(arr.shape)
    if len(shape) != 3:
        hint = " (colour images are not supported; convert to luminance)" if len(shape) == 4 else ""
        raise ValueError(f"images must have shape (n, y, x), got shape {shape}{hint}")
    if shape[0] == 0:
        raise ValueError("empty batch: no images given")
    if shape[1] != shape[2]:
        raise ValueError(f"images must be square, got {shape[1]} x {shape[2]}")
    if image_size is not None and shape[1] != image_size:
        raise ValueError(f"images must be {image_size} x {image_size} pixels, got {shape[1]} x {shape[2]}")
    if isinstance(arr, torch.Tensor):
        if arr.is_floating_point() and not bool(torch.isfinite(arr).all()):
            kind = "NaN" if bool(torch.isnan(arr).any()) else "inf"
            raise ValueError(f"images contain {kind} values")
        lo, hi = float(arr.min()), float(arr.max())
    else:
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            kind = "NaN" if np.isnan(arr).any() else "inf"
            raise ValueError(f"images contain {kind} values")
        lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"image values must lie in [0, 1]; found range [{lo:.4g}, {hi:.4g}]")
    return images


_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def as_images(images: Any, image_size: int | None = None) -> tuple[np.ndarray | torch.Tensor, np.ndarray]:
    """Validated images as an array or tensor ``(n, y, x)`` plus one stimulus id per image.

    Parameters
    ----------
    images
        See :func:`validate_images`.
    image_size
        Required side of the images, if any.

    Returns
    -------
    images : numpy.ndarray or torch.Tensor
        The pixel values (a stimulus set gives its numpy array).
    stimulus_id : numpy.ndarray
        The stimulus set's ids, or ``img000000``, ``img000001``, ... for arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from decoding import as_images
    >>> _, ids = as_images(np.zeros((2, 4, 4)))
    >>> ids.tolist()
    ['img000000', 'img000001']
    """
    validate_images(images, image_size)
    if isinstance(images, xr.Dataset):
        return images["image"].values, images["stimulus_id"].values
    return images, np.array([f"img{i:06d}" for i in range(images.shape[0])])


def _gaussian_rows(positions: np.ndarray, n_pixels: int, sigma: float) -> np.ndarray:
    """1-D Gaussian profiles ``exp(-(q - p)^2 / (2 sigma^2)) / sqrt(2 pi sigma^2)`` at pixel centres q.

    Values beyond 9 sigma (relative size < 3e-18) are set to exactly zero: they would be float32 denormals,
    which make matrix products two orders of magnitude slower on x86 CPUs.
    """
    q = np.arange(n_pixels) + 0.5
    z = (q[None, :] - positions[:, None]) / sigma
    g = np.exp(-0.5 * z ** 2) / math.sqrt(2 * math.pi * sigma ** 2)
    g[np.abs(z) > 9.0] = 0.0
    return g


class Retina(torch.nn.Module):
    """Four (or any number of) ganglion-cell mosaics over a square image, with spikes.

    Each cell's receptive field is a difference of two unit-volume isotropic Gaussians (centre minus
    ``surround_weight`` times surround) centred on the cell, evaluated at pixel centres; cells sit on a regular
    grid per mosaic, so filtering is a separable product ``A_y (I - background) A_x^T`` per Gaussian, never a dense
    ``pixels x cells`` matrix. Expected counts are ``scale * f(gain * polarity * generator + offset)``; counts are
    Poisson (or the expectation itself with ``noise="none"``).

    Parameters
    ----------
    config
        The retina; default :class:`RetinaConfig` (5398 cells on 128 x 128 images).
    dtype
        ``torch.float32`` (fast, default) or ``torch.float64`` (receptive fields computed and applied in double
        precision; ``.double()`` instead would only cast the float32 values).

    Attributes
    ----------
    cell_type, polarity, x, y : numpy.ndarray
        Per-cell metadata in neuroid order (positions in pixels from the top-left image corner).

    Examples
    --------
    >>> import numpy as np
    >>> from decoding import Retina, RetinaConfig
    >>> retina = Retina(RetinaConfig())
    >>> retina.n_cells
    5398
    >>> counts = retina.simulate(np.full((2, 128, 128), 0.5), seed=0)
    >>> counts.dims, counts.shape
    (('presentation', 'neuroid'), (2, 5398))
    """

    def __init__(self, config: RetinaConfig | None = None, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        config = RetinaConfig() if config is None else config
        if not isinstance(config, RetinaConfig):
            raise TypeError(f"config must be a RetinaConfig, got {type(config).__name__}")
        self.config = config
        size = config.image_size
        rows, blocks = [], []
        cell_type, polarity, xs, ys, ids = [], [], [], [], []
        start = 0
        for m in config.mosaics:
            spacing = size / m.grid if m.spacing is None else float(m.spacing)
            origin = 0.5 * (size - m.grid * spacing)
            pos = origin + (np.arange(m.grid) + 0.5) * spacing
            sig_c, sig_s = m.center_sigma * spacing, m.surround_sigma * spacing
            rows.append(_gaussian_rows(pos, size, sig_c))
            rows.append(_gaussian_rows(pos, size, sig_s))
            blocks.append((m.grid, start, start + m.grid, start + 2 * m.grid, m.surround_weight, m.polarity))
            start += 2 * m.grid
            yy, xx = np.meshgrid(pos, pos, indexing="ij")
            cell_type += [m.name] * m.grid ** 2
            polarity += [m.polarity] * m.grid ** 2
            ys.append(yy.ravel())
            xs.append(xx.ravel())
            ids += [f"{m.name}_{i:04d}" for i in range(m.grid ** 2)]
        # All 1-D profiles stacked: one GEMM contracts the x axis for every mosaic and both Gaussians at once.
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.register_buffer("profiles", torch.as_tensor(np.concatenate(rows), dtype=dtype))
        self._blocks = blocks
        self.cell_type = np.array(cell_type)
        self.polarity = np.array(polarity, dtype=np.int8)
        self.y = np.concatenate(ys)
        self.x = np.concatenate(xs)
        self.neuroid_id = np.array(ids)

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return len(self.cell_type)

    def extra_repr(self) -> str:
        mosaics = ", ".join(f"{m.name} {m.grid}x{m.grid}" for m in self.config.mosaics)
        return f"image_size={self.config.image_size}, cells={self.n_cells} ({mosaics})"

    def generator_signal(self, images: torch.Tensor) -> torch.Tensor:
        """Linear stage: ``polarity * sum(receptive field * (image - background))`` for every cell.

        Parameters
        ----------
        images
            Tensor ``(n, size, size)`` on the retina's device (dtype of the retina's buffers).

        Returns
        -------
        torch.Tensor
            ``(n, n_cells)``.

        Examples
        --------
        >>> import torch
        >>> from decoding import Retina, RetinaConfig
        >>> Retina().generator_signal(torch.full((1, 128, 128), 0.5)).abs().max().item()
        0.0
        """
        p = self.profiles
        n, size = images.shape[0], self.config.image_size
        x = images.to(dtype=p.dtype) - self.config.background
        t = (x.reshape(n * size, size) @ p.T).reshape(n, size, -1)  # (n, y, profile): contracted over x
        out = []
        for grid, c0, s0, s1, weight, pol in self._blocks:
            center = torch.matmul(p[c0:s0], t[:, :, c0:s0])  # (n, grid_y, grid_x)
            g = center
            if weight:
                g = center - weight * torch.matmul(p[s0:s1], t[:, :, s0:s1])
            out.append((pol * g).reshape(n, grid * grid))
        return torch.cat(out, dim=1)

    def nonlinearity(self, generator: torch.Tensor) -> torch.Tensor:
        """Static nonlinearity: expected spike counts from generator signals.

        Parameters
        ----------
        generator
            Output of :meth:`generator_signal`.

        Returns
        -------
        torch.Tensor
            ``scale * f(gain * generator + offset)``.

        Examples
        --------
        >>> import torch
        >>> from decoding import Retina, RetinaConfig
        >>> r = Retina(RetinaConfig(image_size=8, mosaics=({"name": "on", "grid": 2},), scale=2.0))
        >>> r.nonlinearity(torch.zeros(1)).item() == 2.0 * torch.log(torch.tensor(2.0)).item()
        True
        """
        c = self.config
        u = c.gain * generator + c.offset
        if c.nonlinearity == "softplus":
            f = torch.nn.functional.softplus(u)
        elif c.nonlinearity == "exponential":
            f = torch.exp(u)
        elif c.nonlinearity == "relu":
            f = torch.relu(u)
        else:
            f = u
        return c.scale * f

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Expected spike counts ``(n, n_cells)`` for a tensor of images ``(n, size, size)``."""
        return self.nonlinearity(self.generator_signal(images))

    def rates(self, images: Any, *, batch_size: int = 512, progress: bool = False) -> np.ndarray:
        """Expected spike counts per image, in batches.

        Parameters
        ----------
        images
            Stimulus set, array or tensor ``(n, size, size)`` in [0, 1].
        batch_size
            Images per batch.
        progress
            Show a progress bar.

        Returns
        -------
        numpy.ndarray
            ``(n, n_cells)`` in the retina's dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from decoding import Retina
        >>> Retina().rates(np.full((1, 128, 128), 0.5)).shape
        (1, 5398)
        """
        batch_size = check_int("batch_size", batch_size, low=1)
        progress = check_bool("progress", progress)
        arr, _ = as_images(images, self.config.image_size)
        return self._run(arr, batch_size, progress, seed=None)

    def simulate(self, images: Any, *, seed: int = 0, batch_size: int = 512,
                 progress: bool = False, n_threads: int | None = None) -> xr.DataArray:
        """Spike counts of every cell to every image, as an assembly.

        Parameters
        ----------
        images
            Grayscale stimulus set, array or tensor ``(n, size, size)`` with values in [0, 1].
        seed
            Seed of the spike noise (a study passes ``data.derive_seed(StudyConfig.seed, "retina", set)``).
            Counts depend on the seed and each image's position only, not on ``batch_size`` or ``n_threads``.
        batch_size
            Images per batch (memory only).
        progress
            Show a progress bar.
        n_threads
            Threads drawing Poisson noise (default ``torch.get_num_threads()``).

        Returns
        -------
        xarray.DataArray
            Assembly ``(presentation, neuroid)`` of counts (float32, or float64 for a float64 retina) with neuroid
            coords ``cell_type``,
            ``polarity``, ``x``, ``y`` (pixels), ``region="retina"``, ``source="simulated"``; presentation
            coords: ``stimulus_id`` and the stimulus set's metadata (its ``source``, the photograph, is renamed
            ``source_image`` since ``source`` is the neuroid coordinate).

        Raises
        ------
        ValueError, TypeError
            For bad images (see :func:`validate_images`).

        Examples
        --------
        >>> import numpy as np
        >>> from decoding import Retina
        >>> counts = Retina().simulate(np.full((3, 128, 128), 0.5), seed=1)
        >>> sorted(set(counts.cell_type.values.tolist()))
        ['off_midget', 'off_parasol', 'on_midget', 'on_parasol']
        """
        seed = check_seed("seed", seed)
        batch_size = check_int("batch_size", batch_size, low=1)
        progress = check_bool("progress", progress)
        n_threads = check_int("n_threads", n_threads, low=1, high=1024, none=True)
        arr, ids = as_images(images, self.config.image_size)
        counts = self._run(arr, batch_size, progress, seed=seed, n_threads=n_threads)
        meta = {}
        if isinstance(images, xr.Dataset):  # the stimulus set's "source" (photograph) becomes "source_image"
            meta = {_PRESENTATION_RENAME.get(name, name): ("presentation", c.values)
                    for name, c in images.coords.items() if c.dims == ("stimulus_id",) and name != "stimulus_id"}
        n = self.n_cells
        attrs = {"retina_config": json.dumps(asdict(self.config), sort_keys=True), "seed": seed,
                 "noise": self.config.noise}
        return data.assembly(
            counts, stimulus_id=ids, neuroid_id=self.neuroid_id, attrs=attrs,
            name="spike_count",
            cell_type=("neuroid", self.cell_type), polarity=("neuroid", self.polarity),
            x=("neuroid", self.x), y=("neuroid", self.y), region=("neuroid", np.full(n, "retina")),
            source=("neuroid", np.full(n, "simulated")), **meta,
        )

    def _run(self, arr: np.ndarray | torch.Tensor, batch_size: int, progress: bool, seed: int | None,
             n_threads: int | None = None) -> np.ndarray:
        noisy = seed is not None and self.config.noise == "poisson"
        if noisy:  # noise blocks never straddle batches
            batch_size = max(_NOISE_BLOCK, batch_size // _NOISE_BLOCK * _NOISE_BLOCK)
        n = arr.shape[0]
        dtype = self.profiles.dtype
        out = np.empty((n, self.n_cells), dtype=np.float64 if dtype == torch.float64 else np.float32)
        threads = n_threads or torch.get_num_threads()
        device = self.profiles.device
        pool = ThreadPoolExecutor(threads) if noisy and threads > 1 else None
        try:
            with torch.no_grad():
                for start in tqdm(range(0, n, batch_size), desc="retina", unit="batch", disable=not progress):
                    chunk = arr[start:start + batch_size]
                    x = chunk if isinstance(chunk, torch.Tensor) else torch.from_numpy(np.asarray(chunk))
                    rates = self(x.to(device=device, non_blocking=True)).cpu().numpy()
                    if noisy:
                        blocks = [(seed, (start + i) // _NOISE_BLOCK, rates[i:i + _NOISE_BLOCK])
                                  for i in range(0, len(rates), _NOISE_BLOCK)]
                        drawn = pool.map(_poisson_block, blocks) if pool else map(_poisson_block, blocks)
                        rates = np.concatenate(list(drawn))
                    out[start:start + len(rates)] = rates
        finally:
            if pool is not None:
                pool.shutdown()
        return out


def _poisson_block(args: tuple[int, int, np.ndarray]) -> np.ndarray:
    seed, block, rates = args
    rng = np.random.default_rng((seed, block))  # numpy releases the GIL here: blocks run in parallel threads
    return rng.poisson(rates).astype(rates.dtype, copy=False)
