"""Image sources: photographs and textures that ship inside installed packages, image folders, patches."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ._assembly import stimulus_set
from ._checks import check_float, check_int, check_nbytes, check_path, check_seed

__all__ = ["natural_images", "texture_images", "image_folder", "sample_patches", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".gif", ".webp")


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()
    return load


def _plenoptic(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import plenoptic

        img = getattr(plenoptic.data, name)()  # (1, C, H, W) torch tensor in [0, 1]
        arr = img[0].detach().cpu().numpy()
        return arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)
    return load


def _sklearn(index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_images

        return load_sample_images().images[index]
    return load


def _pywt_aero() -> np.ndarray:
    import pywt.data

    return pywt.data.aero()


# name -> (package, loader). Every file lies inside the installed package: nothing is downloaded.
NATURAL_PHOTOGRAPHS: dict[str, tuple[str, Callable[[], np.ndarray]]] = {
    **{n: ("scikit-image", _skimage(n)) for n in (
        "astronaut", "camera", "coffee", "chelsea", "rocket", "moon", "coins", "clock", "hubble_deep_field",
        "immunohistochemistry", "retina", "page")},
    **{n: ("plenoptic", _plenoptic(n)) for n in ("einstein", "curie", "parrot", "macaque")},
    "china": ("scikit-learn", _sklearn(0)),
    "flower": ("scikit-learn", _sklearn(1)),
    "aero": ("pywavelets", _pywt_aero),
}
TEXTURES: dict[str, tuple[str, Callable[[], np.ndarray]]] = {
    **{n: ("scikit-image", _skimage(n)) for n in ("brick", "grass", "gravel")},
    "reptile_skin": ("plenoptic", _plenoptic("reptile_skin")),
}


def _to_gray_float(img: np.ndarray, what: str = "image") -> np.ndarray:
    """Luminance in [0, 1]: uint8 / 255, uint16 / 65535, bool as 0/1; any other integer or float image must already
    lie in [0, 1] (a float TIFF with values above 1, say, raises ``ValueError`` rather than being clipped)."""
    arr = np.asarray(img)
    if arr.dtype.kind == "c" or arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float64) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float64) / 65535.0
    else:
        kind = arr.dtype
        arr = arr.astype(np.float64)
        if arr.size:
            if not np.isfinite(arr).all():
                raise ValueError(f"{what} contains NaN or inf values")
            lo, hi = float(arr.min()), float(arr.max())
            if lo < 0.0 or hi > 1.0:
                raise ValueError(
                    f"{what} has dtype {kind} with values in [{lo:.6g}, {hi:.6g}]; only uint8 (0-255) and uint16 "
                    "(0-65535) images are rescaled, other images must lie in [0, 1] (rescale the file first)")
    if arr.ndim == 3:
        if arr.shape[-1] == 4:  # drop alpha
            arr = arr[..., :3]
        if arr.shape[-1] == 3:
            arr = arr @ np.array([0.2125, 0.7154, 0.0721])  # ITU-R 709 luminance, as skimage.color.rgb2gray
        elif arr.shape[-1] == 1:
            arr = arr[..., 0]
        else:
            raise ValueError(f"cannot convert an image with {arr.shape[-1]} channels to grayscale")
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D or 3-D image array, got shape {arr.shape}")
    return np.clip(arr, 0.0, 1.0)  # only rounding of the luminance weights can leave [0, 1]


def _square(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and shrink (anti-aliased) to ``size`` x ``size``; never upsample."""
    from skimage.transform import resize

    h, w = img.shape
    s = min(h, w)
    if s < size:
        raise ValueError(f"image of shape {img.shape} is smaller than the requested size {size}")
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = img[y0:y0 + s, x0:x0 + s]
    if s == size:
        return crop
    return resize(crop, (size, size), order=1, anti_aliasing=True, preserve_range=True)


@functools.lru_cache(maxsize=64)
def _gray_photo(kind: str, name: str) -> np.ndarray:
    """Luminance of a bundled image, decoded once per process (read-only)."""
    catalogue = NATURAL_PHOTOGRAPHS if kind == "natural" else TEXTURES
    img = _to_gray_float(catalogue[name][1]())
    img.setflags(write=False)
    return img


def _catalogue_set(catalogue: dict[str, tuple[str, Callable[[], np.ndarray]]], names: list[str] | None,
                   size: int, min_size: int, degrees: float, extra: dict[str, Any] | None = None) -> xr.Dataset:
    size = check_int("size", size, low=1)
    min_size = check_int("min_size", min_size, low=0)
    degrees = check_float("degrees", degrees, low=0.0, low_open=True)
    if names is not None and (isinstance(names, (str, bytes)) or not all(isinstance(n, str) for n in names)):
        raise TypeError(f"names must be a list of image names (strings), got {names!r}")
    names = list(catalogue) if names is None else list(names)
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        raise ValueError(f"unknown image name(s) {unknown}; available: {sorted(catalogue)}")
    images, kept, packages, shapes = [], [], [], []
    for name in names:
        package = catalogue[name][0]
        img = _gray_photo("natural" if catalogue is NATURAL_PHOTOGRAPHS else "texture", name)
        if min(img.shape) < max(min_size, size):
            continue
        images.append(_square(img, size).astype(np.float32))
        kept.append(name)
        packages.append(package)
        shapes.append(f"{img.shape[0]}x{img.shape[1]}")
    if not images:
        raise ValueError(f"no image has a short side of at least {max(min_size, size)} px")
    meta = {"source": kept, "package": packages, "original_shape": shapes}
    if extra:
        meta.update({k: [v[n] for n in kept] for k, v in extra.items()})
    return stimulus_set(np.stack(images), stimulus_id=kept, degrees=degrees, **meta)


def natural_images(size: int = 256, *, min_size: int = 256, names: list[str] | None = None,
                   degrees: float = 8.0) -> xr.Dataset:
    """Real photographs that ship inside installed packages, as a grayscale stimulus set. Never downloads.

    Sources: scikit-image (astronaut, camera, coffee, chelsea, rocket, moon, coins, clock, hubble_deep_field,
    immunohistochemistry, retina, page), plenoptic (einstein, curie, parrot, macaque), scikit-learn
    (china, flower) and PyWavelets (aero). Each photograph is converted to luminance, centre-cropped to a square
    and shrunk (anti-aliased, never enlarged) to ``size`` x ``size``.

    Parameters
    ----------
    size
        Side of the returned square images in pixels.
    min_size
        Photographs whose short side is below ``max(min_size, size)`` are left out (at the defaults: page,
        parrot), so at least 17 remain at 256 px.
    names
        A subset of photograph names (default: all).
    degrees
        Visual angle of the image width, stored as the ``degrees`` attribute.

    Returns
    -------
    xarray.Dataset
        Stimulus set with ``image (stimulus_id, y, x)`` float32 in [0, 1] and coords ``source`` (photograph name),
        ``package`` and ``original_shape``.

    Examples
    --------
    >>> import data
    >>> s = data.natural_images(size=64, names=["camera", "moon"])
    >>> s.image.shape
    (2, 64, 64)
    >>> s.source.values.tolist()
    ['camera', 'moon']
    """
    return _catalogue_set(NATURAL_PHOTOGRAPHS, names, size, min_size, degrees)


def texture_images(size: int = 256, *, names: list[str] | None = None, degrees: float = 4.0) -> xr.Dataset:
    """Texture photographs that ship inside installed packages (brick, grass, gravel, reptile_skin).

    Parameters
    ----------
    size
        Side of the returned square images in pixels (at most 256).
    names
        A subset of texture names (default: all).
    degrees
        Visual angle of the image width (default 4, as FreemanZiemba2013).

    Returns
    -------
    xarray.Dataset
        Stimulus set with coords ``texture_family``, ``source`` and ``package``.

    Examples
    --------
    >>> import data
    >>> t = data.texture_images(size=32)
    >>> sorted(t.texture_family.values.tolist())
    ['brick', 'grass', 'gravel', 'reptile_skin']
    """
    names = list(TEXTURES) if names is None else list(names)
    ds = _catalogue_set(TEXTURES, names, size, 0, degrees)
    return ds.assign_coords(texture_family=("stimulus_id", ds["source"].values))


def _list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read one image file as grayscale float64 in [0, 1].

    Parameters
    ----------
    path
        An image file (PNG, JPEG, TIFF, ...).

    Returns
    -------
    numpy.ndarray
        2-D array. uint8 and uint16 files are divided by 255 and 65535; other files must hold values in [0, 1].

    Raises
    ------
    TypeError
        If ``path`` is not a path.
    ValueError
        Naming the file, for a float (or other integer) image with values outside [0, 1] (never clipped), NaN,
        or more than 4 channels.

    Examples
    --------
    >>> import data, numpy as np, tempfile, pathlib
    >>> import imageio.v3 as iio
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.png"
    >>> iio.imwrite(p, np.full((4, 4), 255, dtype=np.uint8))
    >>> float(data.read_image(p).max())
    1.0
    """
    import imageio.v3 as iio

    path = check_path("path", path)
    return _to_gray_float(iio.imread(path), what=f"image file {path}")


def image_folder(path: str | os.PathLike, size: int = 256, *, degrees: float = 8.0,
                 max_images: int | None = None) -> xr.Dataset:
    """Load every image of a folder (recursively) as a grayscale stimulus set.

    In ImageNet layout (one subfolder per class) the subfolder name becomes the ``category`` coordinate.
    Images are centre-cropped and shrunk to ``size``; images smaller than ``size`` are left out. For folders too
    large for memory, stream them instead (``lcl`` has a streaming patch loader).

    Parameters
    ----------
    path
        Folder to scan.
    size
        Side of the square images.
    degrees
        Visual angle of the image width.
    max_images
        Read at most this many files (sorted by path), ``>= 1``; ``None``: all.

    Returns
    -------
    xarray.Dataset
        Stimulus set; ``stimulus_id`` is the path relative to ``path``; coords ``source`` (file stem) and
        ``category``.

    Raises
    ------
    TypeError
        For a ``size`` or ``max_images`` that is not an integer, a ``path`` that is not a path.
    ValueError
        If the folder does not exist, holds no image, or no image is at least ``size`` px; for ``size < 1``,
        ``max_images < 1``, or a file whose values lie outside [0, 1] (see :func:`read_image`).

    Examples
    --------
    >>> import data, numpy as np, tempfile, pathlib
    >>> import imageio.v3 as iio
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "cats").mkdir()
    >>> iio.imwrite(root / "cats" / "a.png", np.zeros((40, 50), dtype=np.uint8))
    >>> s = data.image_folder(root, size=32)
    >>> s.category.values.tolist()
    ['cats']
    """
    root = check_path("path", path)
    size = check_int("size", size, low=1)
    degrees = check_float("degrees", degrees, low=0.0, low_open=True)
    max_images = check_int("max_images", max_images, low=1, none=True)
    if not root.is_dir():
        raise ValueError(f"image folder does not exist: {root}")
    files = _list_images(root)
    if not files:
        raise ValueError(f"image folder {root} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    if max_images is not None:
        files = files[:max_images]
    images, ids, cats, stems = [], [], [], []
    for f in files:
        img = read_image(f)
        if min(img.shape) < size:
            continue
        images.append(_square(img, size).astype(np.float32))
        rel = f.relative_to(root)
        ids.append(rel.as_posix())
        cats.append(rel.parts[0] if len(rel.parts) > 1 else "")
        stems.append(f.stem)
    if not images:
        raise ValueError(f"no image in {root} has a short side of at least {size} px")
    return stimulus_set(np.stack(images), stimulus_id=ids, degrees=degrees, source=stems, category=cats)


def sample_patches(stimuli: xr.Dataset, n: int, size: int, *, seed: int = 0) -> xr.Dataset:
    """Random square crops of a stimulus set, reproducible for a seed.

    Each patch comes from an image drawn uniformly (with replacement) and a uniform top-left corner.

    Parameters
    ----------
    stimuli
        A stimulus set (see :func:`data.validate_stimuli`).
    n
        Number of patches.
    size
        Patch side in pixels (at most the image side).
    seed
        Seed of the numpy generator.

    Returns
    -------
    xarray.Dataset
        Stimulus set of patches with coords ``source_id`` (parent ``stimulus_id``), ``y0``, ``x0`` and every
        per-stimulus coordinate of the parent (e.g. ``source``, ``category``); ``degrees`` scaled to the patch.

    Raises
    ------
    TypeError
        For ``n``, ``size`` or ``seed`` that are not integers (bools included).
    ValueError
        For ``n < 1``, ``size`` outside ``[1, image side]``, a negative ``seed``, or an ``n`` whose patches would
        not fit in memory (more than 8 GiB; the environment variable ``LCL_WORKBENCH_MAX_GB`` sets the limit).

    Examples
    --------
    >>> import data
    >>> imgs = data.natural_images(size=64, names=["camera", "moon"])
    >>> p = data.sample_patches(imgs, 5, 16, seed=1)
    >>> p.image.shape
    (5, 16, 16)
    >>> bool((p.image == data.sample_patches(imgs, 5, 16, seed=1).image).all())
    True
    """
    from ._assembly import validate_stimuli

    validate_stimuli(stimuli)
    n = check_int("n", n, low=1)
    h, w = stimuli.sizes["y"], stimuli.sizes["x"]
    size = check_int("size (patch size)", size, low=1, high=min(h, w))
    seed = check_seed("seed", seed)
    channels = stimuli.sizes.get("channel", 1)
    # the patches (image dtype), their row indices and per-patch metadata (ids, coordinates)
    check_nbytes("n", n, n * (size * size * channels * (stimuli["image"].dtype.itemsize + 8) + 256),
                 what=f"{n} patches of {size} x {size} px")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, stimuli.sizes["stimulus_id"], size=n)
    y0 = rng.integers(0, h - size + 1, size=n)
    x0 = rng.integers(0, w - size + 1, size=n)
    imgs = np.asarray(stimuli["image"].values)
    rows = (idx[:, None, None], y0[:, None, None] + np.arange(size)[None, :, None],
            x0[:, None, None] + np.arange(size)[None, None, :])
    patches = imgs[rows]
    meta = {name: c.values[idx] for name, c in stimuli.coords.items()
            if c.dims == ("stimulus_id",) and name != "stimulus_id"}
    ids = [f"patch{i:06d}" for i in range(n)]
    return stimulus_set(patches, stimulus_id=ids, degrees=float(stimuli.attrs["degrees"]) * size / w,
                        source_id=stimuli["stimulus_id"].values[idx], y0=y0, x0=x0, **meta)
