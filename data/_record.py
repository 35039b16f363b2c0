"""Record a torch model's activations on a stimulus set as assemblies (forward hooks on named modules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ._assembly import assembly, validate_stimuli
from ._checks import check_bool, check_device, check_int, check_nbytes

__all__ = ["record", "stimuli_to_tensor", "center_index"]

_POOLS = (None, "mean", "max", "center")


def center_index(side: int, image_side: int, receptive_field: tuple[int, int] | None = None) -> tuple[int, float]:
    """Index of the unit whose receptive field is centred on the image, and its centre's offset in pixels.

    For a layer of unpadded ("valid") convolutions and poolings, unit ``i`` covers input pixels
    ``[i * stride, i * stride + size)``, so its centre lies at ``(size - 1) / 2 + i * stride``; the unit chosen is
    the one whose centre is nearest the image centre ``(image_side - 1) / 2``. Without a receptive field the
    middle unit of the map is taken, which needs an odd map side.

    Parameters
    ----------
    side
        Side of the layer's feature map.
    image_side
        Side of the input image in pixels.
    receptive_field
        ``(size, stride)`` of the layer's units in input pixels (e.g. ``lcl.V1V2.rf(stage)``), or ``None``.

    Returns
    -------
    tuple of (int, float)
        The index along one axis and the signed offset (unit centre minus image centre) in input pixels
        (``nan`` without a receptive field).

    Raises
    ------
    TypeError
        For a ``side`` or ``image_side`` that is not an integer, a ``receptive_field`` that is not two integers.
    ValueError
        For a ``side`` or ``image_side`` below 1, if the map side is even and no receptive field is given, or the
        receptive field does not fit the image.

    Examples
    --------
    >>> import data
    >>> data.center_index(side=5, image_side=13, receptive_field=(5, 2))   # centres at 2, 4, 6, 8, 10
    (2, 0.0)
    >>> data.center_index(side=7, image_side=20)
    (3, nan)
    """
    side = check_int("side", side, low=1)
    image_side = check_int("image_side", image_side, low=1)
    if receptive_field is None:
        if side % 2 == 0:
            raise ValueError(f"a {side}-unit feature map has no middle unit; give the layer's receptive field "
                             "(size, stride) to pick the unit centred on the image")
        return side // 2, float("nan")
    if not isinstance(receptive_field, (tuple, list)) or len(receptive_field) != 2:
        raise TypeError(f"receptive_field must be a (size, stride) pair of integers or None, got {receptive_field!r}")
    size = check_int("receptive_field size", receptive_field[0])
    stride = check_int("receptive_field stride", receptive_field[1])
    if size < 1 or stride < 1 or size > image_side:
        raise ValueError(f"receptive field (size={size}, stride={stride}) does not fit a {image_side}-px image")
    target = ((image_side - 1) / 2 - (size - 1) / 2) / stride
    i = int(min(max(np.floor(target + 0.5), 0), side - 1))
    return i, float((size - 1) / 2 + i * stride - (image_side - 1) / 2)


def stimuli_to_tensor(stimuli: xr.Dataset, channels: int | None = None) -> Any:
    """The images of a stimulus set as a float32 torch tensor ``(n, channel, y, x)``.

    Parameters
    ----------
    stimuli
        A stimulus set.
    channels
        If given, grayscale images are repeated to this many channels (e.g. 3 for RGB networks).

    Returns
    -------
    torch.Tensor

    Raises
    ------
    TypeError
        For a ``channels`` that is not an integer or ``None``.
    ValueError
        For an invalid stimulus set, a ``channels`` below 1, multi-channel images that cannot become ``channels``
        channels, a tensor that would not fit in memory.

    Examples
    --------
    >>> import data, numpy as np
    >>> s = data.stimulus_set(np.zeros((2, 8, 8)))
    >>> tuple(data.stimuli_to_tensor(s, channels=3).shape)
    (2, 3, 8, 8)
    """
    import torch

    validate_stimuli(stimuli)
    channels = check_int("channels", channels, low=1, none=True)
    if channels is not None:
        n_pixels = stimuli["image"].size // (stimuli["image"].shape[-1] if stimuli["image"].ndim == 4 else 1)
        check_nbytes("channels", channels, 4.0 * n_pixels * channels, what="the repeated images")
    arr = np.asarray(stimuli["image"].values, dtype=np.float32)
    t = torch.from_numpy(arr[:, None] if arr.ndim == 3 else np.moveaxis(arr, -1, 1).copy())
    if channels is not None and t.shape[1] != channels:
        if t.shape[1] != 1:
            raise ValueError(f"cannot turn {t.shape[1]}-channel images into {channels} channels")
        t = t.expand(-1, channels, -1, -1)
    return t.contiguous()


def _flatten(out: Any, pool: str | None, image_side: int = 0, receptive_field: tuple[int, int] | None = None
             ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(batch, ...) activations -> (batch, neuroids) plus per-neuroid coordinate arrays."""
    import torch

    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"a recorded module returned {type(out).__name__}, not a tensor")
    out = out.detach().float()
    extra: dict[str, np.ndarray] = {}
    if out.ndim == 4 and pool == "center":
        iy, off_y = center_index(out.shape[2], image_side, receptive_field)
        ix, off_x = center_index(out.shape[3], image_side, receptive_field)
        out = out[:, :, iy, ix]
        n = out.shape[1]
        extra = {"y": np.full(n, iy), "x": np.full(n, ix), "center_offset_px": np.full(n, max(abs(off_y), abs(off_x)))}
    elif out.ndim == 4 and pool is not None:
        out = out.mean(dim=(2, 3)) if pool == "mean" else out.amax(dim=(2, 3))
    b = out.shape[0]
    if out.ndim == 4:
        c, h, w = out.shape[1:]
        cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
        coords = {"channel": cc.ravel(), "y": yy.ravel(), "x": xx.ravel()}
    elif out.ndim == 2:
        coords = {"channel": np.arange(out.shape[1]), **extra}
    else:
        n = int(np.prod(out.shape[1:]))
        coords = {"channel": np.arange(n)}
    return out.reshape(b, -1).cpu().numpy(), coords


def record(
    model: Any,
    stimuli: xr.Dataset,
    layers: Sequence[str],
    *,
    batch_size: int = 32,
    pool: str | None = None,
    channels: int | None = None,
    regions: Mapping[str, str] | None = None,
    receptive_fields: Mapping[str, tuple[int, int]] | None = None,
    device: str | None = None,
    progress: bool = True,
) -> dict[str, xr.DataArray]:
    """Record named modules of a torch model on a stimulus set; one assembly per layer.

    The model runs in eval mode under ``torch.no_grad`` in batches (its training mode is restored after). Spatial
    positions become neuroids (coords ``channel``, ``y``, ``x``) unless ``pool`` averages or maxes them out.

    Parameters
    ----------
    model
        Any ``torch.nn.Module``.
    stimuli
        Stimulus set; its per-stimulus coordinates are carried onto ``presentation``.
    layers
        Names from ``model.named_modules()`` (e.g. ``"stage1"``, ``"backend.layer2.0"``).
    batch_size
        Images per forward pass.
    pool
        ``None`` (keep positions), ``"mean"`` or ``"max"`` over space, or ``"center"``: one unit per channel, the
        one whose receptive field is centred on the image (Brain-Score's single-unit read-out; see
        :func:`center_index`); its position is kept in ``y``, ``x`` and the distance of its receptive-field centre
        from the image centre in ``center_offset_px``.
    channels
        Repeat grayscale images to this many input channels (see :func:`stimuli_to_tensor`).
    regions
        Optional ``layer -> region`` labels (e.g. ``{"stage1": "V1"}``) stored in the ``region`` coordinate.
    receptive_fields
        ``layer -> (size, stride)`` in input pixels, used by ``pool="center"`` (without it the middle unit of an
        odd-sided map is taken). Layers must be unpadded for the centre to be exact.
    device
        Torch device to run on (default: the model's).
    progress
        Show a tqdm progress bar.

    Returns
    -------
    dict of str to xarray.DataArray
        Assemblies with ``neuroid_id`` ``"<layer>.<channel>[.<y>.<x>]"`` and coords ``layer``, ``region``,
        ``source="model"``. Stimulus metadata whose name is also a neuroid coordinate (``source``, ``region``,
        ``layer``, ``channel``, ``y``, ``x``) is carried as ``stimulus_<name>`` (e.g. ``stimulus_source``).

    Raises
    ------
    TypeError
        For a ``model`` that is not a ``torch.nn.Module``, a ``channels`` that is not an integer or ``None``, a
        ``device`` that is not a device name or ``torch.device``, a ``progress`` that is not ``True``/``False``.
    ValueError
        For an unknown layer name (listing the valid ones), an empty layer list, a bad pool or batch size, a
        ``channels`` below 1, an unknown device.

    Examples
    --------
    >>> import torch, data, numpy as np
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU())
    >>> s = data.stimulus_set(np.random.default_rng(0).random((3, 8, 8)), category=["a", "b", "a"])
    >>> out = data.record(net, s, layers=["1"], pool="mean", progress=False)
    >>> out["1"].dims, out["1"].category.values.tolist()
    (('presentation', 'neuroid'), ['a', 'b', 'a'])
    """
    import torch
    from tqdm.auto import tqdm

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    channels = check_int("channels", channels, low=1, none=True)
    device = check_device("device", device, none=True)
    progress = check_bool("progress", progress)
    validate_stimuli(stimuli)
    layers = list(layers)
    if not layers:
        raise ValueError("layers is empty: name at least one module to record")
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        valid = [n for n in modules if n]
        raise ValueError(f"unknown layer(s) {missing}; the model's modules are {valid[:50]}")
    if pool not in _POOLS:
        raise ValueError(f"pool must be one of {_POOLS}, got {pool!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    receptive_fields = dict(receptive_fields or {})
    unknown_rf = sorted(set(receptive_fields) - set(layers))
    if unknown_rf:
        raise ValueError(f"receptive_fields names layer(s) {unknown_rf} that are not recorded")
    if receptive_fields and pool != "center":
        raise ValueError("receptive_fields is used by pool='center' only")
    image_side = int(stimuli.sizes["y"]) if "y" in stimuli.sizes else 0
    if pool == "center" and "x" in stimuli.sizes and stimuli.sizes["x"] != image_side:
        raise ValueError(f"pool='center' needs square images, got {image_side} x {stimuli.sizes['x']}")

    images = stimuli_to_tensor(stimuli, channels)
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    coords: dict[str, dict[str, np.ndarray]] = {}
    current: dict[str, Any] = {}

    def hook_for(name: str):
        def hook(_module, _inputs, output):
            current[name] = output
        return hook

    handles = [modules[name].register_forward_hook(hook_for(name)) for name in layers]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            starts = range(0, images.shape[0], batch_size)
            for start in tqdm(starts, desc="recording", disable=not progress, unit="batch"):
                current.clear()
                model(images[start:start + batch_size].to(device))
                for name in layers:
                    if name not in current:
                        raise RuntimeError(f"module {name!r} was not called in the forward pass")
                    flat, c = _flatten(current[name], pool, image_side, receptive_fields.get(name))
                    chunks[name].append(flat)
                    coords.setdefault(name, c)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    reserved = {"neuroid_id", "layer", "region", "source", "channel", "y", "x"}
    meta = {(f"stimulus_{name}" if name in reserved else name): ("presentation", c.values)
            for name, c in stimuli.coords.items() if c.dims == ("stimulus_id",) and name != "stimulus_id"}
    regions = dict(regions or {})
    result = {}
    for name in layers:
        values = np.concatenate(chunks[name], axis=0)
        c = coords[name]
        parts = [np.char.add(f"{name}.", c["channel"].astype(str))]
        if "y" in c and pool != "center":
            parts.append(np.char.add(".", c["y"].astype(str)))
            parts.append(np.char.add(".", c["x"].astype(str)))
        ids = parts[0]
        for p in parts[1:]:
            ids = np.char.add(ids, p)
        n = values.shape[1]
        neuroid = {k: ("neuroid", v) for k, v in c.items()}
        result[name] = assembly(
            values, stimulus_id=stimuli["stimulus_id"].values, neuroid_id=ids,
            layer=("neuroid", np.full(n, name)), region=("neuroid", np.full(n, regions.get(name, name))),
            source=("neuroid", np.full(n, "model")), **neuroid, **meta,
        )
    return result
