"""Configs of the simulated retina: one mosaic per ganglion-cell type, and the retina that holds them."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import data

__all__ = ["MosaicConfig", "RetinaConfig"]

NONLINEARITIES = ("softplus", "exponential", "relu", "identity")
NOISES = ("poisson", "none")


def _positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> None:
    kind = "integer" if integer else "number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise TypeError(f"{name} must be a {kind}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


@dataclass(frozen=True)
class MosaicConfig(data.Config):
    """One regular mosaic of one retinal ganglion-cell type.

    Parameters
    ----------
    name
        Cell type, e.g. ``"on_parasol"``; becomes the ``cell_type`` coordinate.
    grid
        Cells per side (the mosaic is ``grid x grid``).
    polarity
        ``+1`` for ON cells (excited by light increments), ``-1`` for OFF cells.
    center_sigma
        Standard deviation of the Gaussian centre, in units of the mosaic spacing.
    surround_sigma
        Standard deviation of the Gaussian surround, in units of the mosaic spacing.
    surround_weight
        Integrated strength of the surround relative to the centre (0: no surround, 1: balanced DoG).
    spacing
        Distance between neighbouring cells in pixels; ``None`` (default) tiles the whole image,
        ``image_size / grid``. A mosaic is centred on the image and must fit inside it.

    Examples
    --------
    >>> from decoding import MosaicConfig
    >>> MosaicConfig("on_midget", grid=43, polarity=1).center_sigma
    0.5
    """

    name: str
    grid: int
    polarity: int = 1
    center_sigma: float = 0.5
    surround_sigma: float = 1.5
    surround_weight: float = 0.55
    spacing: float | None = None

    def validate(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"mosaic name must be a non-empty string, got {self.name!r}")
        _positive(f"mosaic {self.name!r} grid", self.grid, integer=True)
        if self.polarity not in (1, -1) or isinstance(self.polarity, bool):
            raise ValueError(f"mosaic {self.name!r} polarity must be +1 (ON) or -1 (OFF), got {self.polarity!r}")
        _positive(f"mosaic {self.name!r} center_sigma", self.center_sigma)
        _positive(f"mosaic {self.name!r} surround_sigma", self.surround_sigma)
        _positive(f"mosaic {self.name!r} surround_weight", self.surround_weight, allow_zero=True)
        if self.spacing is not None:
            _positive(f"mosaic {self.name!r} spacing", self.spacing)


def _default_mosaics() -> tuple[MosaicConfig, ...]:
    # Grids as in Parthasarathy et al. 2017 (5398 cells on 128 x 128). Centre sizes relative to spacing, surround
    # three times the centre with 0.55 of its strength (after Croner & Kaplan 1995, radius ratio shortened to keep
    # border effects small on 128-pixel images). These are our choices, not the paper's (which are unpublished).
    return (
        MosaicConfig("on_parasol", 26, +1, center_sigma=0.6, surround_sigma=1.8),
        MosaicConfig("off_parasol", 32, -1, center_sigma=0.6, surround_sigma=1.8),
        MosaicConfig("on_midget", 43, +1, center_sigma=0.5, surround_sigma=1.5),
        MosaicConfig("off_midget", 43, -1, center_sigma=0.5, surround_sigma=1.5),
    )


@dataclass(frozen=True)
class RetinaConfig(data.Config):
    """A simulated retina: mosaics of difference-of-Gaussians cells, a static nonlinearity, spike noise.

    The expected spike count of a cell with receptive field ``k`` (centre minus surround, each a unit-volume
    Gaussian in pixel units) on image ``I`` is ``scale * f(gain * polarity * sum(k * (I - background)) + offset)``.

    Parameters
    ----------
    image_size
        Side of the square input images in pixels.
    mosaics
        The cell mosaics (default: ON/OFF parasol 26x26 and 32x32, ON/OFF midget 43x43 each).
    nonlinearity
        ``"softplus"`` (default), ``"exponential"``, ``"relu"`` or ``"identity"`` (a linear retina).
    gain, offset, scale
        Parameters of the nonlinearity (defaults give about 4.5 spikes per cell per natural image).
    background
        Luminance subtracted before filtering (mean of the adapting background).
    noise
        ``"poisson"`` spike counts or ``"none"`` (the expected counts themselves). The noise's seed is an
        argument of :meth:`Retina.simulate`; a study derives it from :attr:`StudyConfig.seed`.

    Examples
    --------
    >>> from decoding import RetinaConfig
    >>> cfg = RetinaConfig()
    >>> sum(m.grid ** 2 for m in cfg.mosaics)
    5398
    """

    image_size: int = 128
    mosaics: tuple[MosaicConfig, ...] = field(default_factory=_default_mosaics)
    nonlinearity: str = "softplus"
    gain: float = 12.0
    offset: float = 0.0
    scale: float = 5.0
    background: float = 0.5
    noise: str = "poisson"

    def validate(self) -> None:
        _positive("image_size", self.image_size, integer=True)
        mosaics = tuple(MosaicConfig(**m) if isinstance(m, dict) else m for m in self.mosaics)
        object.__setattr__(self, "mosaics", mosaics)
        if not mosaics:
            raise ValueError("a retina needs at least one mosaic")
        if not all(isinstance(m, MosaicConfig) for m in mosaics):
            raise TypeError("mosaics must be MosaicConfig instances (or dicts of their fields)")
        names = [m.name for m in mosaics]
        if len(set(names)) != len(names):
            raise ValueError(f"mosaic names must be unique, got {names}")
        for m in mosaics:
            spacing = self.image_size / m.grid if m.spacing is None else m.spacing
            extent = m.grid * spacing
            if m.grid > self.image_size or extent > self.image_size + 1e-9:
                raise ValueError(
                    f"mosaic {m.name!r} is larger than the image: {m.grid} cells x spacing {spacing:g} px = "
                    f"{extent:g} px (or more cells than pixels per side) on a {self.image_size} px image"
                )
        if self.nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {self.nonlinearity!r}")
        if self.noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, got {self.noise!r}")
        if self.noise == "poisson" and self.nonlinearity == "identity":
            raise ValueError("Poisson noise needs non-negative rates; use a rectifying nonlinearity or noise='none'")
        for name in ("gain", "offset", "scale", "background"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        _positive("scale", self.scale)

    @property
    def n_cells(self) -> int:
        """Total number of cells over all mosaics."""
        return sum(m.grid ** 2 for m in self.mosaics)


def scaled_mosaics(factor: float) -> tuple[MosaicConfig, ...]:
    """The default mosaics with every grid scaled by ``factor`` (same cell densities on a smaller image)."""
    return tuple(dataclasses.replace(m, grid=max(1, round(m.grid * factor))) for m in _default_mosaics())
