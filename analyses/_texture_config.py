"""The texture / noise stimulus protocol's config (:class:`TextureStimuliConfig`), its checks and the family
source images it names."""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

import data
from data._checks import check_bool, check_float, check_int, check_seed

__all__ = [
    "TextureStimuliConfig",
    "validate_texture_config",
    "default_cache_dir",
    "LARGE_TEXTURE_FAMILIES",
    "PROTOCOL_FAMILIES",
]

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
class TextureStimuliConfig(data.Config):
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
        Root seed of the set when used on its own (:func:`analyses.texture_stimuli`); sample ``s`` of family ``f``
        uses the seed sequence ``(seed, f, s)``. In the main job it is not set: the job writes
        ``data.derive_seed(root, "stimuli")`` here (see :class:`analyses.PipelineConfig`).

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

    def validate(self) -> None:
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
    ValueError: unknown texture family source 'carpet': not a bundled texture (brick, grass, gravel, reptile_skin),
    not a bundled photograph (see data.natural_images) and not an image file path
    """
    if not isinstance(config, TextureStimuliConfig):
        raise TypeError(f"expected a TextureStimuliConfig, got {type(config).__name__}")
    c = config
    c.validate()  # the constructor's checks again, for a config changed after construction
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
