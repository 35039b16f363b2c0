"""Self-supervised losses on the features of two deformed views: pure functions, selectable by name.

Every loss takes ``z1, z2`` of shape ``(..., batch, dim)`` -- row ``i`` of ``z1`` and of ``z2`` are the two views of
the same patch, rows ``j != i`` come from other patches -- and returns a scalar tensor, averaged over leading
dimensions (e.g. the cells of a spatial pooling grid, see :func:`pool_features`).

Examples
--------
>>> import torch
>>> from lcl import losses
>>> z = torch.eye(4)
>>> float(losses.get("lcl")(z, z, center=False))
-1.0
>>> sorted(losses.LOSSES)
['barlow_twins', 'infonce', 'lcl']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["lcl", "barlow_twins", "infonce", "pool_features", "LOSSES", "get", "validate_name", "validate_options"]


def _check_pair(z1: torch.Tensor, z2: torch.Tensor, min_batch: int = 2) -> None:
    if z1.shape != z2.shape:
        raise ValueError(f"the two views must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.ndim < 2:
        raise ValueError(f"features must have shape (..., batch, dim), got {tuple(z1.shape)}")
    if z1.shape[-2] < min_batch:
        raise ValueError(f"these losses need at least {min_batch} patches per batch, got {z1.shape[-2]}")


def lcl(z1: torch.Tensor, z2: torch.Tensor, *, decorrelation: float = 1.0, center: bool = True,
        eps: float = 1e-8) -> torch.Tensor:
    """Default LCL objective: similarity of two views, decorrelation from other patches.

    With ``u = z / |z|`` (after subtracting the batch mean of each feature over both views when ``center``)::

        loss = -mean_i cos(u1_i, u2_i) + decorrelation * mean_{i != j} cos(u1_i, u2_j)^2

    Parameters
    ----------
    z1, z2
        Features of the two views, shape (..., batch, dim).
    decorrelation
        Weight of the decorrelation term (lambda).
    center
        Subtract each feature's mean over the batch (both views) first; needed for rectified (non-negative)
        features, whose raw cosines are all positive.
    eps
        Guards the normalisation of zero vectors.

    Returns
    -------
    torch.Tensor
        Scalar. Identical views with mutually orthogonal patches give -1; identical views of one repeated
        vector (collapse, ``center=False``) give ``-1 + decorrelation``.

    Examples
    --------
    >>> import torch
    >>> from lcl import losses
    >>> z = torch.eye(3)
    >>> float(losses.lcl(z, z, center=False))
    -1.0
    >>> round(float(losses.lcl(torch.ones(3, 2), torch.ones(3, 2), decorrelation=0.5, center=False)), 6)
    -0.5
    """
    _check_pair(z1, z2)
    if center:
        mean = 0.5 * (z1.mean(dim=-2, keepdim=True) + z2.mean(dim=-2, keepdim=True))
        z1, z2 = z1 - mean, z2 - mean
    u1 = z1 / z1.norm(dim=-1, keepdim=True).clamp_min(eps)
    u2 = z2 / z2.norm(dim=-1, keepdim=True).clamp_min(eps)
    cos = u1 @ u2.transpose(-1, -2)  # (..., batch, batch)
    n = cos.shape[-1]
    positive = torch.diagonal(cos, dim1=-2, dim2=-1).mean()
    off = ~torch.eye(n, dtype=torch.bool, device=cos.device)
    negative = cos.pow(2)[..., off].mean()
    return -positive + decorrelation * negative


def barlow_twins(z1: torch.Tensor, z2: torch.Tensor, *, off_diagonal: float = 5e-3,
                 eps: float = 1e-5) -> torch.Tensor:
    """Barlow-Twins objective (Zbontar et al. 2021) on the cross-correlation of the two views' features.

    Each feature is standardised over the batch (zero mean, unit biased std); with ``C = z1n^T z2n / batch``::

        loss = sum_k (1 - C_kk)^2 + off_diagonal * sum_{k != l} C_kl^2

    Parameters
    ----------
    z1, z2
        Features of the two views, shape (..., batch, dim).
    off_diagonal
        Weight of the redundancy-reduction term (lambda).
    eps
        Added to the variance before standardising.

    Returns
    -------
    torch.Tensor
        Scalar. 0 for identical views with uncorrelated features; ``4 * dim`` for anti-correlated views
        (``z2 = -z1``) with uncorrelated features.

    Examples
    --------
    >>> import torch
    >>> from lcl import losses
    >>> z = torch.tensor([[1., 1.], [1., -1.], [-1., 1.], [-1., -1.]])  # uncorrelated columns
    >>> round(float(losses.barlow_twins(z, z, eps=0.0)), 6)
    0.0
    >>> round(float(losses.barlow_twins(z, -z, eps=0.0)), 6)
    8.0
    """
    _check_pair(z1, z2)
    n = z1.shape[-2]

    def standardise(z: torch.Tensor) -> torch.Tensor:
        z = z - z.mean(dim=-2, keepdim=True)
        return z / torch.sqrt(z.pow(2).mean(dim=-2, keepdim=True) + eps)

    c = standardise(z1).transpose(-1, -2) @ standardise(z2) / n  # (..., dim, dim)
    diag = torch.diagonal(c, dim1=-2, dim2=-1)
    on = (1 - diag).pow(2).sum(dim=-1)
    offd = c.pow(2).sum(dim=(-2, -1)) - diag.pow(2).sum(dim=-1)
    return (on + off_diagonal * offd).mean()


def infonce(z1: torch.Tensor, z2: torch.Tensor, *, temperature: float = 0.1, eps: float = 1e-8) -> torch.Tensor:
    """Symmetric InfoNCE / NT-Xent (SimCLR): each view must pick its partner among the other ``2*batch - 1``.

    Parameters
    ----------
    z1, z2
        Features of the two views, shape (..., batch, dim).
    temperature
        Softmax temperature applied to cosine similarities.
    eps
        Guards the normalisation of zero vectors.

    Returns
    -------
    torch.Tensor
        Scalar. For identical views of mutually orthogonal patches it equals
        ``-log(e^(1/t) / (e^(1/t) + 2*batch - 2))``.

    Examples
    --------
    >>> import math, torch
    >>> from lcl import losses
    >>> z = torch.eye(4)
    >>> expected = -math.log(math.e ** 10 / (math.e ** 10 + 6))
    >>> abs(float(losses.infonce(z, z, temperature=0.1)) - expected) < 1e-5
    True
    """
    _check_pair(z1, z2)
    n = z1.shape[-2]
    u = torch.cat([z1, z2], dim=-2)
    u = u / u.norm(dim=-1, keepdim=True).clamp_min(eps)
    logits = u @ u.transpose(-1, -2) / temperature  # (..., 2n, 2n)
    eye = torch.eye(2 * n, dtype=torch.bool, device=u.device)
    logits = logits.masked_fill(eye, float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(u.device)
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, target.expand(*logp.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    return -picked.mean()


LOSSES: dict[str, Callable[..., torch.Tensor]] = {"lcl": lcl, "barlow_twins": barlow_twins, "infonce": infonce}

def validate_name(name: str) -> str:
    """Return ``name`` if it is a known loss, else raise ``ValueError`` listing the known ones.

    Examples
    --------
    >>> from lcl import losses
    >>> losses.validate_name("barlow_twins")
    'barlow_twins'
    >>> losses.validate_name("simclr")
    Traceback (most recent call last):
    ...
    ValueError: unknown loss 'simclr'; known losses: ['barlow_twins', 'infonce', 'lcl']
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known losses: {sorted(LOSSES)}")
    return name


def validate_options(name: str, options: dict) -> dict:
    """Check that ``options`` are keyword arguments of loss ``name`` (not the views); return them.

    Examples
    --------
    >>> from lcl import losses
    >>> losses.validate_options("lcl", {"decorrelation": 0.5})
    {'decorrelation': 0.5}
    >>> losses.validate_options("lcl", {"temperature": 0.5})
    Traceback (most recent call last):
    ...
    ValueError: unknown option(s) ['temperature'] for loss 'lcl'; valid options: ['center', 'decorrelation', 'eps']
    """
    fn = get(name)
    valid = sorted(p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for loss {name!r}; valid options: {valid}")
    for key, val in options.items():
        if isinstance(val, bool) != (key == "center") or not isinstance(val, (int, float)):
            raise ValueError(f"loss option {key!r} must be a {'bool' if key == 'center' else 'number'}, "
                             f"got {val!r}")
        if key in ("temperature", "eps") and not val > 0:
            raise ValueError(f"loss option {key!r} must be > 0, got {val!r}")
        if key in ("decorrelation", "off_diagonal") and not val >= 0:
            raise ValueError(f"loss option {key!r} must be >= 0, got {val!r}")
    return dict(options)


def get(name: str) -> Callable[..., torch.Tensor]:
    """The loss function called ``name`` (see :data:`LOSSES`).

    Examples
    --------
    >>> from lcl import losses
    >>> losses.get("lcl") is losses.lcl
    True
    """
    return LOSSES[validate_name(name)]


def pool_features(y: torch.Tensor, grid: int) -> torch.Tensor:
    """Average a feature map over a ``grid x grid`` partition of space: (b, c, h, w) -> (grid*grid, b, c).

    Each grid cell becomes a leading batch dimension of the losses, so views are compared cell by cell (the same
    region of the patch) and negatives are other patches in the same cell. ``grid=1`` pools the whole patch.

    Parameters
    ----------
    y
        Stage output (batch, channel, height, width).
    grid
        Cells per side (``1 <= grid <= min(height, width)``).

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> import torch
    >>> from lcl import losses
    >>> y = torch.arange(16.0).view(1, 1, 4, 4)
    >>> losses.pool_features(y, 2).flatten().tolist()
    [2.5, 4.5, 10.5, 12.5]
    """
    b, c, h, w = y.shape
    if not 1 <= grid <= min(h, w):
        raise ValueError(f"pool grid {grid} must be between 1 and the feature map side {min(h, w)}")
    p = F.adaptive_avg_pool2d(y, grid)  # (b, c, g, g)
    return p.flatten(2).permute(2, 0, 1)
