"""Record a torch model's activations on a stimulus set as assemblies (forward hooks on named modules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ._assembly import assembly, validate_stimuli

__all__ = ["record", "stimuli_to_tensor"]

_POOLS = (None, "mean", "max")


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

    Examples
    --------
    >>> import data, numpy as np
    >>> s = data.stimulus_set(np.zeros((2, 8, 8)))
    >>> tuple(data.stimuli_to_tensor(s, channels=3).shape)
    (2, 3, 8, 8)
    """
    import torch

    validate_stimuli(stimuli)
    arr = np.asarray(stimuli["image"].values, dtype=np.float32)
    t = torch.from_numpy(arr[:, None] if arr.ndim == 3 else np.moveaxis(arr, -1, 1).copy())
    if channels is not None and t.shape[1] != channels:
        if t.shape[1] != 1:
            raise ValueError(f"cannot turn {t.shape[1]}-channel images into {channels} channels")
        t = t.expand(-1, channels, -1, -1)
    return t.contiguous()


def _flatten(out: Any, pool: str | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(batch, ...) activations -> (batch, neuroids) plus per-neuroid coordinate arrays."""
    import torch

    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"a recorded module returned {type(out).__name__}, not a tensor")
    out = out.detach().float()
    if out.ndim == 4 and pool is not None:
        out = out.mean(dim=(2, 3)) if pool == "mean" else out.amax(dim=(2, 3))
    b = out.shape[0]
    if out.ndim == 4:
        c, h, w = out.shape[1:]
        cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
        coords = {"channel": cc.ravel(), "y": yy.ravel(), "x": xx.ravel()}
    elif out.ndim == 2:
        coords = {"channel": np.arange(out.shape[1])}
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
        ``None`` (keep positions), ``"mean"`` or ``"max"`` over space.
    channels
        Repeat grayscale images to this many input channels (see :func:`stimuli_to_tensor`).
    regions
        Optional ``layer -> region`` labels (e.g. ``{"stage1": "V1"}``) stored in the ``region`` coordinate.
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
    ValueError
        For an unknown layer name (listing the valid ones), an empty layer list, a bad pool or batch size.

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
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")

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
                    flat, c = _flatten(current[name], pool)
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
        if "y" in c:
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
