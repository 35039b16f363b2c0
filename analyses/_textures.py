"""Texture and spectrally matched noise stimuli (Freeman et al. 2013) with Portilla-Simoncelli synthesis."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import data
from data._checks import (check_array, check_bool, check_float, check_int, check_nbytes, check_path, check_seed)

__all__ = [
    "TextureStimuliConfig",
    "texture_stimuli",
    "validate_texture_config",
    "phase_randomize",
    "raised_cosine_aperture",
    "portilla_simoncelli_loss",
    "default_cache_dir",
    "LARGE_TEXTURE_FAMILIES",
    "PROTOCOL_FAMILIES",
    "crop_to_stimulus",
]

# Bumped whenever the synthesis procedure changes, so that old cache files are not reused.
_SYNTHESIS_VERSION = 3

# Fifteen families (as FreemanZiemba2013) from the bundled textures and texture-like photo crops; every photo's
# short side is >= 256 px, so crop_fraction=0.5 supports images up to 128 px without enlarging.
LARGE_TEXTURE_FAMILIES = (
    "brick", "grass", "gravel", "reptile_skin", "immunohistochemistry", "flower", "hubble_deep_field",
    "coins", "moon", "china", "aero", "macaque", "chelsea", "retina", "coffee",
)
# The default protocol's twelve families: the four bundled textures and eight photo crops with strong higher-order
# structure (edges, blobs, repeated elements).
PROTOCOL_FAMILIES = LARGE_TEXTURE_FAMILIES[:12]

# Bounds of the synthesis settings: largest texture side, families x samples, L-BFGS iterations, pyramid scales
# (2**10 = 1024), orientations (plenoptic's steerable pyramid: order = n_orientations - 1 in [1, 15]).
MAX_SIZE = 1024
MAX_STIMULI = 10_000
MAX_ITER = 10_000
MAX_SCALES = 10
ORIENTATIONS = (2, 16)
MAX_THREADS = 4096


@dataclasses.dataclass(frozen=True)
class TextureStimuliConfig:
    """How to make the texture / noise stimulus set.

    Parameters
    ----------
    families
        Source of each texture family: a bundled texture (``brick``, ``grass``, ``gravel``, ``reptile_skin``;
        used whole), a bundled photograph name (see :func:`data.natural_images`; a centre crop of
        ``crop_fraction`` of its short side is used) or a path to an image file (used whole; the family is
        named by the file stem).
    n_samples
        Synthesized texture samples per family, each from its own seed, each with its own noise image. The
        samples of a family are synthesized together (one L-BFGS run on the batch, each sample matching the
        source's statistics on its own), which is about twice as fast as one at a time.
    size
        Side of the square texture (the aperture) in pixels; the image is ``canvas * size`` pixels.
    crop_fraction
        Side of the photo crop as a fraction of the photograph's short side.
    n_scales, n_orientations, spatial_corr_width
        Portilla-Simoncelli model parameters; ``size`` must be divisible by ``2**n_scales`` and
        ``size / 2**n_scales >= spatial_corr_width``.
    max_iter
        L-BFGS iterations of the synthesis (each at most 10 function evaluations), per sample.
    aperture
        Apply a raised-cosine aperture: the texture blends into the grey ``background`` outside it.
    aperture_ramp
        Width of the cosine ramp as a fraction of the aperture radius (the radius is half of ``size``).
    canvas
        Side of the whole image as a multiple of ``size``: the stimulus sits at the centre of a grey canvas
        (Brain-Score places FreemanZiemba2013's 4-degree stimuli in an 8-degree field: ``canvas = 2``); 1 = no
        canvas. A canvas needs ``aperture = true``.
    background
        Grey level of the canvas and of the aperture's outside, in [0, 1].
    degrees
        Visual angle of the stimulus (the aperture), FreemanZiemba2013: 4; the image spans ``canvas * degrees``.
    seed
        Base seed; sample ``s`` of family ``f`` uses the seed sequence ``(seed, f, s)``.

    Raises
    ------
    TypeError
        On construction, for a field of the wrong type (a string or float for a count, a string for a number, a
        non-boolean ``aperture``, families that are not a list of strings).
    ValueError
        On construction, for a field out of range: no families, counts below 1, ``size`` above 1024 or not
        divisible by ``2**n_scales``, ``n_scales`` above 10, ``n_orientations`` outside [2, 16], an even or too
        wide ``spatial_corr_width``, ``max_iter`` above 10000, more than 10000 stimuli, ``crop_fraction`` or
        ``aperture_ramp`` outside (0, 1], ``canvas`` outside [1, 8] (above 1 without aperture),
        ``background`` outside [0, 1], ``degrees`` not > 0, NaN or inf, a negative ``seed``. The families
        themselves (names, files, photo sizes) are checked by :func:`validate_texture_config`.

    Examples
    --------
    >>> import analyses
    >>> c = analyses.TextureStimuliConfig(families=("brick", "grass"), n_samples=1, size=32, n_scales=2)
    >>> c.size, c.n_samples
    (32, 1)
    >>> d = analyses.TextureStimuliConfig()   # the field's protocol: 12 families x 8 samples, 128 px in a 2x canvas
    >>> len(d.families), d.n_samples, d.size, d.canvas, d.aperture
    (12, 8, 128, 2.0, True)
    """

    families: tuple[str, ...] = PROTOCOL_FAMILIES
    n_samples: int = 8
    size: int = 128
    crop_fraction: float = 0.5
    n_scales: int = 4
    n_orientations: int = 4
    spatial_corr_width: int = 7
    max_iter: int = 15
    aperture: bool = True
    aperture_ramp: float = 0.25
    canvas: float = 2.0
    background: float = 0.5
    degrees: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_fields(self)

    @property
    def image_size(self) -> int:
        """Side of the whole image (stimulus plus canvas) in pixels."""
        return canvas_size(self.size, self.canvas)

    @property
    def image_degrees(self) -> float:
        """Visual angle of the whole image."""
        return float(self.degrees) * self.image_size / self.size


def canvas_size(size: int, canvas: float) -> int:
    """Side of a canvas ``canvas`` times the stimulus side, rounded so the stimulus sits exactly at its centre."""
    side = int(round(size * canvas))
    return side + (side - size) % 2


def default_cache_dir() -> Path:
    """Where synthesized stimuli are cached: ``$LCL_WORKBENCH_CACHE``, else ``$XDG_CACHE_HOME/lcl-workbench``,
    else ``~/.cache/lcl-workbench``.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import analyses, pathlib
    >>> isinstance(analyses.default_cache_dir(), pathlib.Path)
    True
    """
    if os.environ.get("LCL_WORKBENCH_CACHE"):
        return Path(os.environ["LCL_WORKBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lcl-workbench"


@functools.lru_cache(maxsize=1)
def _texture_names() -> tuple[str, ...]:
    """Names of the bundled textures (``data.texture_images``)."""
    return tuple(str(n) for n in data.texture_images(size=8)["texture_family"].values)


@functools.lru_cache(maxsize=64)
def _photo_short_side(name: str) -> int | None:
    """Short side in pixels of a bundled photograph (``data.natural_images``), ``None`` for an unknown name."""
    try:
        meta = data.natural_images(size=8, names=[name], min_size=0)
    except ValueError as exc:
        if str(exc).startswith("unknown image name"):
            return None
        raise
    return min(int(v) for v in str(meta["original_shape"].values[0]).split("x"))


def _is_path(name: str) -> bool:
    return os.sep in name or "/" in name or Path(name).suffix.lower() in (
        ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".gif", ".webp")


def _check_pyramid(size_name: str, size: int, n_scales: Any, n_orientations: Any, spatial_corr_width: Any
                   ) -> tuple[int, int, int]:
    """Checked Portilla-Simoncelli settings for square images of side ``size`` (named ``size_name``)."""
    n_scales = check_int("n_scales", n_scales, low=1, high=MAX_SCALES)
    n_orientations = check_int("n_orientations", n_orientations, low=ORIENTATIONS[0], high=ORIENTATIONS[1])
    spatial_corr_width = check_int("spatial_corr_width", spatial_corr_width, low=1, high=MAX_SIZE)
    if size % (2 ** n_scales):
        raise ValueError(f"{size_name} {size} must be divisible by 2**n_scales = {2 ** n_scales} "
                         "(Portilla-Simoncelli pyramid)")
    if size // (2 ** n_scales) < spatial_corr_width:
        raise ValueError(
            f"{size_name} {size} is too small for n_scales={n_scales} with spatial_corr_width="
            f"{spatial_corr_width}: the coarsest band is {size // 2 ** n_scales} px; lower n_scales "
            "or spatial_corr_width, or raise size")
    if spatial_corr_width % 2 == 0:
        raise ValueError(f"spatial_corr_width must be odd, got {spatial_corr_width}")
    return n_scales, n_orientations, spatial_corr_width


def _check_fields(c: TextureStimuliConfig) -> None:
    """The checks of every field of ``c`` on its own and together (no file or image is read)."""
    if isinstance(c.families, str) or not isinstance(c.families, (tuple, list)) \
            or not all(isinstance(f, str) for f in c.families):
        raise ValueError(f"families must be a list of names or paths, got {c.families!r}")
    if not c.families:
        raise ValueError("families is empty: give at least one texture family source")
    for field in ("n_samples", "size", "max_iter"):
        check_int(field, getattr(c, field), low=1)
    for field in ("n_scales", "n_orientations", "spatial_corr_width"):
        check_int(field, getattr(c, field))
    check_float("crop_fraction", c.crop_fraction)
    if not 0.0 < c.crop_fraction <= 1.0:
        raise ValueError(f"crop_fraction must lie in (0, 1], got {c.crop_fraction}")
    check_float("aperture_ramp", c.aperture_ramp)
    if not 0.0 < c.aperture_ramp <= 1.0:
        raise ValueError(f"aperture_ramp must lie in (0, 1], got {c.aperture_ramp}")
    for field in ("canvas", "background", "degrees"):
        check_float(field, getattr(c, field))
    check_bool("aperture", c.aperture)
    if not 1.0 <= c.canvas <= 8.0:
        raise ValueError(f"canvas must lie in [1, 8] (image side / stimulus side), got {c.canvas}")
    if c.canvas > 1.0 and not c.aperture:
        raise ValueError("canvas > 1 needs aperture = true: a stimulus without aperture would have a hard edge "
                         "against the grey canvas")
    if not 0.0 <= c.background <= 1.0:
        raise ValueError(f"background must lie in [0, 1], got {c.background}")
    check_seed("seed", c.seed)
    if c.size > MAX_SIZE or len(c.families) * c.n_samples > MAX_STIMULI:
        raise ValueError(f"size {c.size} (at most {MAX_SIZE}) or families x n_samples = "
                         f"{len(c.families) * c.n_samples} (at most {MAX_STIMULI}) too large to synthesize")
    check_int("max_iter", c.max_iter, high=MAX_ITER)
    if not c.degrees > 0:
        raise ValueError(f"degrees must be positive, got {c.degrees}")
    _check_pyramid("size", c.size, c.n_scales, c.n_orientations, c.spatial_corr_width)


def validate_texture_config(config: TextureStimuliConfig) -> TextureStimuliConfig:
    """Check a :class:`TextureStimuliConfig` before any synthesis; return it unchanged.

    Parameters
    ----------
    config
        The config to check.

    Returns
    -------
    TextureStimuliConfig
        ``config`` itself.

    Raises
    ------
    TypeError
        For a ``config`` that is not a :class:`TextureStimuliConfig`, fields of the wrong type.
    ValueError
        Naming the problem: unknown family, missing image file, photo crop smaller than ``size``, a size the
        Portilla-Simoncelli pyramid cannot handle, non-positive counts (the field checks of
        :class:`TextureStimuliConfig`, repeated here for configs changed after construction).

    Examples
    --------
    >>> import analyses
    >>> analyses.validate_texture_config(analyses.TextureStimuliConfig(families=("carpet",)))
    Traceback (most recent call last):
    ...
    ValueError: unknown texture family source 'carpet': not a bundled texture (brick, grass, gravel, reptile_skin), not a bundled photograph (see data.natural_images) and not an image file path
    """
    if not isinstance(config, TextureStimuliConfig):
        raise TypeError(f"expected a TextureStimuliConfig, got {type(config).__name__}")
    c = config
    _check_fields(c)
    textures = _texture_names()
    names = []
    for fam in c.families:
        if fam in textures:
            names.append(fam)
        elif not _is_path(fam) and (short := _photo_short_side(fam)) is not None:
            crop = int(round(c.crop_fraction * short))
            if crop < c.size:
                raise ValueError(
                    f"photo family {fam!r}: a crop_fraction={c.crop_fraction} crop of its {short} px short "
                    f"side is {crop} px, smaller than size={c.size} (photos are never enlarged)")
            names.append(fam)
        elif _is_path(fam):
            p = Path(fam)
            if not p.is_file():
                raise ValueError(f"texture family image file not found: {fam}")
            names.append(p.stem)
        else:
            raise ValueError(
                f"unknown texture family source {fam!r}: not a bundled texture ({', '.join(textures)}), "
                "not a bundled photograph (see data.natural_images) and not an image file path")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate texture family name(s) {dup}")
    return config


def _source_image(fam: str, c: TextureStimuliConfig) -> tuple[str, str, np.ndarray]:
    """(family name, kind, image (size, size) float64 in [0, 1]) for one family source."""
    from skimage.transform import resize

    if fam in _texture_names():
        img = data.texture_images(size=c.size, names=[fam])["image"].values[0]
        return fam, "texture", np.asarray(img, dtype=np.float64)
    if _is_path(fam):
        img = data.read_image(fam)
        name, kind = Path(fam).stem, "file"
    else:
        short = _photo_short_side(fam)
        full = np.asarray(data.natural_images(size=short, names=[fam], min_size=0)["image"].values[0], np.float64)
        crop = int(round(c.crop_fraction * short))
        y0 = (short - crop) // 2
        img, name, kind = full[y0:y0 + crop, y0:y0 + crop], fam, "photo"
    h, w = img.shape
    s = min(h, w)
    if s < c.size:
        raise ValueError(f"family {name!r}: source image of {h}x{w} px is smaller than size={c.size}")
    y0, x0 = (h - s) // 2, (w - s) // 2
    img = img[y0:y0 + s, x0:x0 + s]
    if s != c.size:
        img = resize(img, (c.size, c.size), order=1, anti_aliasing=True, preserve_range=True)
    return name, kind, np.clip(img, 0.0, 1.0)


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


def _config_key(c: TextureStimuliConfig) -> str:
    from importlib.metadata import version

    payload = {"config": dataclasses.asdict(c), "synthesis_version": _SYNTHESIS_VERSION,
               "plenoptic": version("plenoptic")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def texture_stimuli(config: TextureStimuliConfig | None = None, *, cache_dir: str | os.PathLike | None = None,
                    cache: bool = True, progress: bool = False, num_threads: int | None = 1,
                    workers: int = 1) -> xr.Dataset:
    """Naturalistic textures (Portilla-Simoncelli synthesis) and spectrally matched noise, as one stimulus set.

    For each family source image and each sample, a texture is synthesized with plenoptic's
    Portilla-Simoncelli model (L-BFGS from seeded noise, matching the source's statistics) and a noise image
    is made from it by :func:`phase_randomize` (same Fourier amplitude spectrum, random phases), as in
    Freeman et al. (2013). If a pair leaves [0, 1], both images are scaled in contrast around their common mean
    by the same factor (kept in ``contrast_factor``), which keeps their amplitude spectra equal. An optional
    raised-cosine aperture is applied last to both.

    The result is cached as netCDF in ``cache_dir`` keyed by a hash of the config (and plenoptic version), and
    written atomically, so a re-run loads it instead of synthesizing.

    Parameters
    ----------
    config
        :class:`TextureStimuliConfig`; default: the small embedded default (6 families x 3 samples, 64 px).
    cache_dir
        Cache folder (default :func:`default_cache_dir` / ``textures``).
    cache
        Read and write the cache.
    progress
        Print one line per synthesized sample.
    num_threads
        torch threads during synthesis, restored afterwards (``None``: leave torch's setting). One thread is
        fastest for small images, and on a shared machine extra threads can slow synthesis down ten-fold.
    workers
        Processes synthesizing families side by side (each with ``num_threads`` torch threads). The result does
        not depend on it: every family has its own seeds and the set is assembled in family order. On 2 cores,
        ``workers=2`` halves the synthesis time of the 12-family protocol (measured in
        ``benchmarks/analyses_bench.py``).

    Returns
    -------
    xarray.Dataset
        Stimulus set with ``image (stimulus_id, y, x)`` float32 in [0, 1] (texture samples first, then noise,
        per family); coords ``texture_family``, ``texture_type`` (``"texture"``/``"noise"``), ``sample``,
        ``family_kind`` (``texture``/``photo``/``file``), ``ps_loss`` (Portilla-Simoncelli statistics mismatch
        to the family source scaled by the pair's ``contrast_factor``, before the aperture) and
        ``contrast_factor``; variable ``source_image (family, source_y, source_x)``
        with ``source_name (family)``; attrs ``degrees``, ``synthesis_seconds``, ``cache_key``, ``config``.

    Raises
    ------
    TypeError
        For a ``config`` that is not a :class:`TextureStimuliConfig` or ``None``, a ``cache_dir`` that is not a
        path or ``None``, a ``cache`` or ``progress`` that is not ``True``/``False``, a ``num_threads`` or
        ``workers`` that is not an integer.
    ValueError
        From :func:`validate_texture_config`, before any work; for a ``num_threads`` or ``workers`` below 1 or
        above 4096.

    Examples
    --------
    >>> import analyses, tempfile
    >>> c = analyses.TextureStimuliConfig(families=("brick",), n_samples=1, size=32, n_scales=2, max_iter=2)
    >>> s = analyses.texture_stimuli(c, cache_dir=tempfile.mkdtemp())
    >>> s.texture_type.values.tolist()
    ['texture', 'noise']
    >>> s.image.shape          # the 32 px stimulus sits in a canvas twice its size (``canvas=2.0``)
    (2, 64, 64)
    >>> int(s.attrs["stimulus_pixels"])
    32
    """
    c = validate_texture_config(config if config is not None else TextureStimuliConfig())
    cache_dir = check_path("cache_dir", cache_dir, none=True)
    cache = check_bool("cache", cache)
    progress = check_bool("progress", progress)
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    num_threads = check_int("num_threads", num_threads, low=1, high=MAX_THREADS, none=True)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    workers = check_int("workers", workers, low=1, high=MAX_THREADS)
    key = _config_key(c)
    path = (cache_dir if cache_dir is not None else default_cache_dir() / "textures") / f"textures-{key}.nc"
    if cache and path.is_file():
        ds = data.load(path)
        if ds.attrs.get("cache_key") == key:
            return data.validate_stimuli(ds)
    import torch

    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        stim = _make_stimuli(c, key, progress, workers=workers, num_threads=num_threads)
    finally:
        torch.set_num_threads(threads)
    if cache:
        data.save(stim, path, config=c, seed=c.seed)
    stim.attrs.update({"config": json.dumps(dataclasses.asdict(c), sort_keys=True)})
    return stim


def _family_seeds(c: TextureStimuliConfig, f: int) -> list[list[np.random.SeedSequence]]:
    """Per sample of family ``f``: the seed of its synthesis and the seed of its noise."""
    return [np.random.SeedSequence([c.seed, f, s]).spawn(2) for s in range(c.n_samples)]


@functools.lru_cache(maxsize=2)
def _cached_ps_model(c: TextureStimuliConfig) -> Any:
    return _ps_model(c)


def _synthesize_family(c: TextureStimuliConfig, f: int, src: np.ndarray, num_threads: int | None) -> np.ndarray:
    """The texture samples of family ``f`` from its source ``src`` (runs in a worker process too; same numbers)."""
    import torch

    if num_threads is not None:
        torch.set_num_threads(num_threads)
    return _synthesize(src, c, _cached_ps_model(c), [synth for synth, _ in _family_seeds(c, f)])


def _make_stimuli(c: TextureStimuliConfig, key: str, progress: bool, *, workers: int = 1,
                  num_threads: int | None = 1) -> xr.Dataset:
    """Synthesize every texture sample and its noise; assemble the stimulus set."""
    t0 = time.perf_counter()
    window = raised_cosine_aperture(c.size, c.aperture_ramp) if c.aperture else None
    tex_imgs, noise_imgs, targets, meta = [], [], [], []
    sources, source_names = [], []
    n_fam = len(c.families)
    workers = min(workers, n_fam)
    pool = None
    families = [_source_image(fam, c) for fam in c.families]  # (name, kind, source image), read once
    if workers > 1:
        import concurrent.futures
        import multiprocessing

        # spawn, not fork: forking a process whose torch thread pool is running can deadlock
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        futures = [pool.submit(_synthesize_family, c, f, src, num_threads) for f, (_, _, src) in enumerate(families)]
    try:
        for f, (name, kind, src) in enumerate(families):
            sources.append(src)
            source_names.append(name)
            seqs = _family_seeds(c, f)
            texs = futures[f].result() if pool is not None else _synthesize_family(c, f, src, None)
            _add_family(texs, seqs, src, name, kind, tex_imgs, noise_imgs, targets, meta)
            if progress:
                print(f"texture_stimuli: family {f + 1}/{n_fam} {name}: {c.n_samples} samples "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return _assemble(c, key, t0, window, tex_imgs, noise_imgs, targets, meta, sources, source_names)


def _add_family(texs: np.ndarray, seqs: list, src: np.ndarray, name: str, kind: str,
                tex_imgs: list, noise_imgs: list, targets: list, meta: list) -> None:
    """Noise partners, contrast fitting and bookkeeping of one family's synthesized samples."""
    for s, (tex, (_, noise_seq)) in enumerate(zip(texs, seqs)):
        noise = phase_randomize(tex, np.random.default_rng(noise_seq))
        mean = float(tex.mean())
        tex, noise, factor = _fit_range(tex, noise)
        tex_imgs.append(tex)
        noise_imgs.append(noise)
        # the reference for the PS statistics: the source with the same contrast scaling as the pair
        targets.append(mean + factor * (src - mean))
        meta.append((name, kind, s, factor))


def _assemble(c: TextureStimuliConfig, key: str, t0: float, window: np.ndarray | None, tex_imgs: list,
              noise_imgs: list, targets: list, meta: list, sources: list, source_names: list) -> xr.Dataset:
    """The stimulus set: images in the canvas, PS losses, coordinates."""
    targets = np.stack(targets)
    losses_tex = portilla_simoncelli_loss(np.stack(tex_imgs), targets, n_scales=c.n_scales,
                                          n_orientations=c.n_orientations,
                                          spatial_corr_width=c.spatial_corr_width)
    losses_noise = portilla_simoncelli_loss(np.stack(noise_imgs), targets, n_scales=c.n_scales,
                                            n_orientations=c.n_orientations,
                                            spatial_corr_width=c.spatial_corr_width)
    images, ids, fams, types, samples, kinds, losses, factors = [], [], [], [], [], [], [], []
    for f_name in source_names:
        for kind_label, imgs, ls in (("texture", tex_imgs, losses_tex), ("noise", noise_imgs, losses_noise)):
            for i, (name, kind, s, factor) in enumerate(meta):
                if name != f_name:
                    continue
                images.append(_place(imgs[i], window, c))
                ids.append(f"{name}-{kind_label}-{s:02d}")
                fams.append(name)
                types.append(kind_label)
                samples.append(s)
                kinds.append(kind)
                losses.append(ls[i])
                factors.append(factor)
    seconds = time.perf_counter() - t0
    stim = data.stimulus_set(
        np.clip(np.stack(images), 0.0, 1.0).astype(np.float32), stimulus_id=ids, degrees=c.image_degrees,
        texture_family=fams, texture_type=types, sample=np.array(samples), family_kind=kinds,
        ps_loss=np.array(losses), contrast_factor=np.array(factors),
        attrs={"synthesis_seconds": float(seconds), "cache_key": key,
               "description": "Portilla-Simoncelli textures and spectrally matched noise (Freeman et al. 2013)"})
    stim["source_image"] = (("family", "source_y", "source_x"), np.stack(sources).astype(np.float32))
    stim.attrs.update({"stimulus_degrees": float(c.degrees), "stimulus_pixels": int(c.size)})
    stim["source_name"] = (("family",), np.array(source_names))
    return stim
