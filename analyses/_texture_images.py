"""Image operations of the texture protocol: spectrally matched noise, the raised-cosine aperture, the
Portilla-Simoncelli synthesis and its loss, contrast fitting and placement in the canvas."""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import numpy as np
import xarray as xr

import data
from data._checks import check_array, check_float, check_int, check_nbytes, check_seed

from ._texture_config import MAX_SCALES, MAX_SIZE, ORIENTATIONS, TextureStimuliConfig, _check_pyramid

__all__ = ["phase_randomize", "raised_cosine_aperture", "portilla_simoncelli_loss", "crop_to_stimulus"]


def phase_randomize(image: np.ndarray, seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Spectrally matched noise: the image's Fourier amplitude spectrum with random phases.

    The random phases are those of the Fourier transform of real white noise, so they are Hermitian-symmetric
    and the result is real; the DC term is kept, so the mean luminance is preserved. The amplitude
    spectrum of the output equals that of the input at every frequency (to floating-point precision).

    Parameters
    ----------
    image
        2-D array.
    seed
        Seed or numpy Generator for the phases.

    Returns
    -------
    numpy.ndarray
        float64 array of the same shape (values may leave [0, 1]).

    Raises
    ------
    TypeError
        For an ``image`` that is not real numbers (strings, complex values, ``None``), a ``seed`` that is neither
        an integer, a numpy Generator nor ``None``.
    ValueError
        For an ``image`` that is not a non-empty 2-D array or holds NaN/inf, a negative ``seed``.

    Examples
    --------
    >>> import numpy as np, analyses
    >>> img = np.random.default_rng(0).random((16, 16))
    >>> noise = analyses.phase_randomize(img, seed=1)
    >>> bool(np.allclose(np.abs(np.fft.fft2(noise)), np.abs(np.fft.fft2(img))))
    True
    >>> bool(np.isclose(noise.mean(), img.mean()))
    True
    """
    img = check_array("image", image, min_size=0)
    if img.ndim != 2:
        raise ValueError(f"phase_randomize takes a 2-D image, got shape {img.shape}")
    if img.size == 0:
        raise ValueError(f"image is empty (shape {img.shape})")
    if not isinstance(seed, np.random.Generator):
        seed = check_seed("seed", seed, none=True)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    spectrum = np.fft.fft2(img)
    phase = np.angle(np.fft.fft2(rng.standard_normal(img.shape)))
    phase[0, 0] = np.angle(spectrum[0, 0])  # 0 or pi: the DC term (the mean) is kept exactly
    return np.fft.ifft2(np.abs(spectrum) * np.exp(1j * phase)).real


def raised_cosine_aperture(size: int, ramp: float = 0.25) -> np.ndarray:
    """Circular raised-cosine window: 1 inside radius ``(1 - ramp) * size / 2``, cosine to 0 at ``size / 2``.

    Parameters
    ----------
    size
        Side of the square window in pixels.
    ramp
        Width of the ramp as a fraction of the radius ``size / 2``.

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` float64 in [0, 1].

    Raises
    ------
    TypeError
        For a ``size`` that is not an integer, a ``ramp`` that is not a real number.
    ValueError
        For a ``size`` below 1 or whose window would not fit in memory, a ``ramp`` outside (0, 1].

    Examples
    --------
    >>> import analyses
    >>> w = analyses.raised_cosine_aperture(32, ramp=0.5)
    >>> float(w[16, 16]), float(w[0, 0])
    (1.0, 0.0)
    """
    size = check_int("size", size)
    ramp = check_float("ramp", ramp)
    if size < 1 or not 0 < ramp <= 1:
        raise ValueError(f"need size >= 1 and ramp in (0, 1], got size={size}, ramp={ramp}")
    check_nbytes("size", size, 8.0 * 6 * size ** 2, what="the window and its coordinate grids")
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(yy - c, xx - c) / (size / 2.0)
    inner = 1.0 - ramp
    t = np.clip((r - inner) / ramp, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def _ps_model(c: TextureStimuliConfig) -> Any:
    import plenoptic as po

    model = po.models.PortillaSimoncelli((c.size, c.size), n_scales=c.n_scales,
                                         n_orientations=c.n_orientations,
                                         spatial_corr_width=c.spatial_corr_width)
    po.remove_grad(model)
    return model.eval()


def portilla_simoncelli_loss(images: np.ndarray, targets: np.ndarray, *, n_scales: int = 3,
                             n_orientations: int = 4, spatial_corr_width: int = 7) -> np.ndarray:
    """Portilla-Simoncelli statistics mismatch between each image and its target (plenoptic's synthesis loss).

    The loss is ``plenoptic.loss.portilla_simoncelli_loss_factory`` (weighted L2 norm of the difference of PS
    statistics; min/max pixel values excluded), the objective that texture synthesis minimizes.

    Parameters
    ----------
    images, targets
        Arrays ``(n, size, size)`` (or one ``(size, size)`` image each).
    n_scales, n_orientations, spatial_corr_width
        Portilla-Simoncelli model parameters.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` losses; 0 for identical statistics.

    Raises
    ------
    TypeError
        For images or targets that are not real numbers, model parameters that are not integers.
    ValueError
        For images and targets of different or non-square shapes, NaN/inf values, a side above 1024 or not
        divisible by ``2**n_scales``, ``n_scales`` outside [1, 10], ``n_orientations`` outside [2, 16], an even
        ``spatial_corr_width`` or one wider than the coarsest band.

    Examples
    --------
    >>> import numpy as np, analyses
    >>> t = np.random.default_rng(0).random((1, 32, 32))
    >>> float(analyses.portilla_simoncelli_loss(t, t, n_scales=2)[0])
    0.0
    """
    import plenoptic as po
    import torch

    n_scales = check_int("n_scales", n_scales, low=1, high=MAX_SCALES)
    n_orientations = check_int("n_orientations", n_orientations, low=ORIENTATIONS[0], high=ORIENTATIONS[1])
    spatial_corr_width = check_int("spatial_corr_width", spatial_corr_width, low=1, high=MAX_SIZE)
    imgs = check_array("images", images, ndim=(2, 3), dtype=np.float32)
    tgts = check_array("targets", targets, ndim=(2, 3), dtype=np.float32)
    if imgs.ndim == 2:
        imgs, tgts = imgs[None], tgts[None]
    if imgs.shape != tgts.shape or imgs.ndim != 3 or imgs.shape[1] != imgs.shape[2]:
        raise ValueError(f"images and targets must both be (n, size, size); got {imgs.shape} and {tgts.shape}")
    if imgs.shape[1] > MAX_SIZE:
        raise ValueError(f"images must be at most {MAX_SIZE} pixels a side, got shape {imgs.shape}")
    _check_pyramid("image side", imgs.shape[1], n_scales, n_orientations, spatial_corr_width)
    c = TextureStimuliConfig(size=imgs.shape[1], n_scales=n_scales, n_orientations=n_orientations,
                             spatial_corr_width=spatial_corr_width)
    model = _ps_model(c)
    x, y = torch.from_numpy(imgs[:, None]), torch.from_numpy(tgts[:, None])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = po.loss.portilla_simoncelli_loss_factory(model, x[:1])
    with torch.no_grad():
        return np.array([float(loss(model(x[i:i + 1]), model(y[i:i + 1]))) for i in range(len(x))])


def _synthesize(target: np.ndarray, c: TextureStimuliConfig, model: Any,
                seed_seqs: list[np.random.SeedSequence]) -> np.ndarray:
    """Portilla-Simoncelli texture samples of ``target``, one per seed, synthesized as one batch.

    Each sample starts from its own seeded noise; one L-BFGS run minimises the sum of the samples' own
    statistics mismatches (each term depends on its sample only). Returns ``(len(seed_seqs), size, size)``.
    """
    import plenoptic as po
    import torch

    n = len(seed_seqs)
    tgt = torch.from_numpy(np.asarray(target, dtype=np.float32)[None, None]).expand(n, 1, -1, -1).contiguous()
    inits = []
    for seq in seed_seqs:
        gen = torch.Generator().manual_seed(int(seq.generate_state(1, dtype=np.uint64)[0] % (2 ** 63)))
        # uniform noise with the target's mean and a small spread (plenoptic's recommended start)
        inits.append((torch.rand(tgt.shape[1:], generator=gen) - 0.5) * 0.2 + tgt.mean())
    init = torch.stack(inits)
    # plenoptic draws a tqdm bar on stderr for every synthesis; keep it out of the run's log.
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        loss = po.loss.portilla_simoncelli_loss_factory(model, tgt)
        met = po.Metamer(tgt, model, loss_function=loss)
        met.setup(init, optimizer=torch.optim.LBFGS,
                  optimizer_kwargs=dict(max_iter=10, max_eval=10, history_size=100,
                                        line_search_fn="strong_wolfe", lr=1))
        met.synthesize(max_iter=c.max_iter, stop_criterion=0.0)
    out = met.metamer.detach().cpu().numpy()[:, 0].astype(np.float64)
    if not np.isfinite(out).all():
        raise RuntimeError("Portilla-Simoncelli synthesis produced non-finite pixels")
    return out


def _fit_range(tex: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Scale the contrast of a texture/noise pair around their common mean so both lie in [0, 1].

    The same factor for both keeps their amplitude spectra equal (and the mean unchanged).
    """
    m = float(tex.mean())
    factor = 1.0
    for img in (tex, noise):
        dev_hi, dev_lo = float(img.max()) - m, m - float(img.min())
        if dev_hi > 0:
            factor = min(factor, (1.0 - m) / dev_hi)
        if dev_lo > 0:
            factor = min(factor, m / dev_lo)
    return m + factor * (tex - m), m + factor * (noise - m), factor


def _place(img: np.ndarray, window: np.ndarray | None, c: TextureStimuliConfig) -> np.ndarray:
    """Apply the aperture (blending into the grey background) and put the stimulus at the canvas centre."""
    if window is None:
        return img
    img = c.background + window * (img - c.background)
    side = c.image_size
    if side == c.size:
        return img
    out = np.full((side, side), c.background, dtype=np.float64)
    lo = (side - c.size) // 2
    out[lo:lo + c.size, lo:lo + c.size] = img
    return out


def crop_to_stimulus(stimuli: xr.Dataset) -> xr.Dataset:
    """The stimulus set cropped to the stimulus (the aperture's square), dropping the grey canvas around it.

    Uses the ``stimulus_pixels`` attribute written by :func:`texture_stimuli`; a set without it (no canvas, or
    another source) is returned unchanged. ``degrees`` is updated to the cropped width.

    Parameters
    ----------
    stimuli
        A stimulus set.

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import numpy as np, data, analyses
    >>> s = data.stimulus_set(np.zeros((1, 16, 16)), degrees=8.0, attrs={"stimulus_pixels": 8})
    >>> c = analyses.crop_to_stimulus(s)
    >>> c.image.shape, c.attrs["degrees"]
    ((1, 8, 8), 4.0)
    """
    data.validate_stimuli(stimuli)
    size = stimuli.attrs.get("stimulus_pixels")
    side = int(stimuli.sizes["y"])
    if size is None or int(size) >= side:
        return stimuli
    size = int(size)
    lo = (side - size) // 2
    out = stimuli.isel(y=slice(lo, lo + size), x=slice(lo, lo + size))
    out.attrs = {**stimuli.attrs, "degrees": float(stimuli.attrs["degrees"]) * size / side}
    return out
