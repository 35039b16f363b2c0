"""LCL-V2Net: a frozen LCL front end + a ResNet-style back end for recognition, against baselines, under corruptions."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

import data
from data._checks import check_bool, check_choice, check_int, check_nbytes, check_path, check_seed, check_str

from ._corrupt import corrupt
from ._model import V1V2
from ._recognition_config import FRONT_ENDS, MAX_CHANNELS, BackEndConfig, RecognitionConfig

__all__ = ["BackEnd", "V2Net", "PixelStem", "CropTask", "build_v2net", "train_v2net", "evaluate_corruptions",
           "corruption_benchmark", "plot_corruptions"]

#: Largest class count accepted by the networks here.
MAX_CLASSES = 1_000_000


# --------------------------------------------------------------------------------------------------- networks
class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class BackEnd(nn.Module):
    """ResNet-style classifier on a feature map: ``stem``, ``layers.0`` ... ``layers.k``, ``pool``, ``fc``.

    Parameters
    ----------
    in_channels
        Channels of the input feature map.
    n_classes
        Output classes.
    config
        Widths and blocks.

    Raises
    ------
    TypeError, ValueError
        For channel or class counts that are not positive integers (at most 65536 channels, 10^6 classes), a
        ``config`` that is not a :class:`BackEndConfig`, or weights that would not fit in memory.

    Examples
    --------
    >>> import torch, lcl
    >>> b = lcl.BackEnd(64, 10, lcl.BackEndConfig(widths=(16, 32), blocks=1))
    >>> tuple(b(torch.rand(2, 64, 7, 7)).shape)
    (2, 10)
    """

    def __init__(self, in_channels: int, n_classes: int, config: BackEndConfig | None = None):
        super().__init__()
        in_channels = check_int("in_channels", in_channels, low=1, high=MAX_CHANNELS)
        n_classes = check_int("n_classes", n_classes, low=1, high=MAX_CLASSES)
        config = BackEndConfig() if config is None else config
        if not isinstance(config, BackEndConfig):
            raise TypeError(f"config must be a BackEndConfig, got {type(config).__name__}")
        w0 = config.widths[0]
        n_weights = 9 * in_channels * w0 + config.widths[-1] * n_classes + sum(
            18 * w * w * config.blocks for w in config.widths)
        check_nbytes("config", config, 4.0 * n_weights, what=f"a back end of about {n_weights:.3g} weights")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, w0, 3, padding=1, bias=False), nn.BatchNorm2d(w0),
                                  nn.ReLU())
        layers, cin = [], w0
        for i, w in enumerate(config.widths):
            blocks = [_Block(cin, w, 2 if i > 0 else 1)] + [_Block(w, w, 1) for _ in range(config.blocks - 1)]
            layers.append(nn.Sequential(*blocks))
            cin = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


class PixelStem(nn.Module):
    """Standard ResNet stem on raw pixels: 7x7 conv stride 2, batch norm, ReLU, 3x3 max-pool stride 2.

    Parameters
    ----------
    in_channels
        Image channels (1 to 65536).
    channels
        Output channels (1 to 65536).

    Examples
    --------
    >>> import torch, lcl
    >>> tuple(lcl.PixelStem(1, 32)(torch.rand(1, 1, 48, 48)).shape)
    (1, 32, 12, 12)
    """

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        in_channels = check_int("in_channels", in_channels, low=1, high=MAX_CHANNELS)
        channels = check_int("channels", channels, low=1, high=MAX_CHANNELS)
        check_nbytes("channels", channels, 4.0 * 49 * in_channels * channels, what="the stem's weights")
        self.conv = nn.Conv2d(in_channels, channels, 7, stride=2, padding=3, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.bn(self.conv(x))))


class V2Net(nn.Module):
    """Front end (``front_end``) followed by a ResNet-style back end (``backend``).

    With ``frozen=True`` the front end stays in eval mode, has no trainable parameters and runs under
    ``torch.no_grad``. Record with ``data.record(net, stimuli, layers=["front_end.stage2", "backend.layers.0"])``.

    Parameters
    ----------
    front_end
        A :class:`lcl.V1V2`, a :class:`PixelStem` or any module mapping images to a feature map.
    backend
        The classifier.
    frozen
        Freeze the front end.

    Examples
    --------
    >>> import torch, lcl
    >>> front = lcl.V1V2(lcl.LCLConfig.preset("demo").model)
    >>> net = lcl.V2Net(front, lcl.BackEnd(64, 5, lcl.BackEndConfig(widths=(16,), blocks=1)), frozen=True)
    >>> tuple(net(torch.rand(2, 1, 48, 48)).shape), net.front_end.stage1.conv.weight.requires_grad
    ((2, 5), False)
    """

    def __init__(self, front_end: nn.Module, backend: BackEnd, *, frozen: bool):
        super().__init__()
        if not isinstance(front_end, nn.Module):
            raise TypeError(f"front_end must be a torch.nn.Module, got {type(front_end).__name__}")
        if not isinstance(backend, nn.Module):
            raise TypeError(f"backend must be a torch.nn.Module (a BackEnd), got {type(backend).__name__}")
        frozen = check_bool("frozen", frozen)
        self.front_end = front_end
        self.backend = backend
        self.frozen = frozen
        if frozen:
            self.front_end.requires_grad_(False)
            self.front_end.eval()

    def train(self, mode: bool = True) -> V2Net:
        super().train(mode)
        if self.frozen:
            self.front_end.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen:
            with torch.no_grad():
                h = self.front_end(x)
        else:
            h = self.front_end(x)
        return self.backend(h)


def _front_channels(front: nn.Module) -> int:
    if isinstance(front, V1V2):
        return front.config.stage2.channels
    return int(front.out_channels)


def build_v2net(kind: str, lcl_model: V1V2 | None, backend: BackEndConfig, n_classes: int, *, seed: int = 0,
                in_channels: int = 1) -> V2Net:
    """Build the network for one front end (see :data:`FRONT_ENDS`) with a freshly initialised back end.

    Parameters
    ----------
    kind
        ``"lcl"`` (needs ``lcl_model``, used frozen), ``"pixels"`` or ``"supervised"`` (architecture of
        ``lcl_model``, or the default, trained from scratch).
    lcl_model
        The trained LCL model.
    backend
        Back-end architecture.
    n_classes
        Number of classes.
    seed
        Seeds the new weights.
    in_channels
        Image channels.

    Returns
    -------
    V2Net

    Raises
    ------
    TypeError, ValueError
        Before building anything, for an unknown ``kind``, an ``lcl_model`` that is not a :class:`lcl.V1V2`
        (or missing for ``"lcl"``), a ``backend`` that is not a :class:`BackEndConfig`, bad counts or seed.

    Examples
    --------
    >>> import lcl
    >>> net = lcl.build_v2net("pixels", None, lcl.BackEndConfig(widths=(16,), blocks=1), 4)
    >>> type(net.front_end).__name__, net.frozen
    ('PixelStem', False)
    """
    check_choice("kind", kind, FRONT_ENDS)
    if lcl_model is not None and not isinstance(lcl_model, V1V2):
        raise TypeError(f"lcl_model must be an lcl.V1V2 or None, got {type(lcl_model).__name__}")
    if not isinstance(backend, BackEndConfig):
        raise TypeError(f"backend must be a BackEndConfig, got {type(backend).__name__}")
    n_classes = check_int("n_classes", n_classes, low=1, high=MAX_CLASSES)
    seed = check_seed("seed", seed)
    in_channels = check_int("in_channels", in_channels, low=1, high=MAX_CHANNELS)
    torch.manual_seed(seed)
    if kind == "lcl":
        if lcl_model is None:
            raise ValueError("front end 'lcl' needs a trained LCL model")
        front: nn.Module = lcl_model
    elif kind == "pixels":
        front = PixelStem(in_channels, backend.widths[0])
    elif kind == "supervised":
        config = lcl_model.config if lcl_model is not None else None
        front = V1V2(config)
    else:
        raise ValueError(f"unknown front end {kind!r}; known: {FRONT_ENDS}")
    net = V2Net(front, BackEnd(_front_channels(front), n_classes, backend), frozen=kind == "lcl")
    return net


# --------------------------------------------------------------------------------------------------- the task
class CropTask:
    """Classification of crops of the bundled photographs and textures, held out by tile.

    Attributes: ``images`` (n, 1, S, S), ``classes`` (names), ``kind`` ("photo"/"texture" per class),
    ``test_x`` / ``test_y`` (held-out crops and labels), ``train_positions`` ((k, 3) image, y0, x0 of every
    allowed training crop).

    Parameters
    ----------
    config
        Sizes, split and seed.
    images
        Optional stimulus set to use instead of the bundled photographs and textures (its ``stimulus_id`` is
        the class).

    Examples
    --------
    >>> import lcl, data
    >>> cfg = lcl.RecognitionConfig(image_size=64, tile_size=32, crop_size=24, test_crops_per_tile=2)
    >>> task = lcl.CropTask(cfg, data.natural_images(size=64, names=["camera", "moon", "coins"]))
    >>> tuple(task.test_x.shape), task.classes
    ((6, 1, 24, 24), ['camera', 'moon', 'coins'])
    """

    def __init__(self, config: RecognitionConfig, images: xr.Dataset | None = None):
        if not isinstance(config, RecognitionConfig):
            raise TypeError(f"config must be a RecognitionConfig, got {type(config).__name__}")
        if images is not None and not isinstance(images, xr.Dataset):
            raise TypeError(f"images must be a stimulus set (xarray.Dataset) or None, got {type(images).__name__}")
        self.config = config
        size = config.image_size
        if images is None:
            photos = data.natural_images(size=size)
            textures = data.texture_images(size=min(size, 256))
            if textures.sizes["y"] != size:
                raise ValueError(f"textures are at most 256 px; use image_size <= 256 (got {size})")
            self.classes = [str(s) for s in photos.stimulus_id.values] + \
                [str(s) for s in textures.texture_family.values]
            self.kind = ["photo"] * photos.sizes["stimulus_id"] + ["texture"] * textures.sizes["stimulus_id"]
            imgs = torch.cat([data.stimuli_to_tensor(photos), data.stimuli_to_tensor(textures)])
        else:
            data.validate_stimuli(images)
            if images.sizes["y"] != size or images.sizes["x"] != size:
                raise ValueError(f"images must be {size}x{size} (RecognitionConfig.image_size)")
            self.classes = [str(s) for s in images.stimulus_id.values]
            self.kind = ["image"] * len(self.classes)
            imgs = data.stimuli_to_tensor(images)
        self.images = imgs
        n = imgs.shape[0]
        t, c = config.tile_size, config.crop_size
        per_side = size // t
        n_tiles = per_side ** 2
        n_test = max(1, min(n_tiles - 1, round(config.test_fraction * n_tiles)))
        rng = np.random.default_rng(config.seed)
        test_mask = np.zeros((n, size, size), dtype=bool)
        tx, ty = [], []
        for i in range(n):
            for tile in rng.choice(n_tiles, size=n_test, replace=False):
                ty0, tx0 = (tile // per_side) * t, (tile % per_side) * t
                test_mask[i, ty0:ty0 + t, tx0:tx0 + t] = True
                for _ in range(config.test_crops_per_tile):
                    y0 = ty0 + int(rng.integers(0, t - c + 1))
                    x0 = tx0 + int(rng.integers(0, t - c + 1))
                    tx.append(imgs[i, :, y0:y0 + c, x0:x0 + c])
                    ty.append(i)
        self.test_x = torch.stack(tx)
        self.test_y = torch.tensor(ty)
        # every crop position that does not touch a held-out tile (integral image of the mask)
        integral = np.pad(test_mask.cumsum(1).cumsum(2), ((0, 0), (1, 0), (1, 0)))
        m = size - c + 1
        inside = (integral[:, c:c + m, c:c + m] - integral[:, :m, c:c + m] - integral[:, c:c + m, :m]
                  + integral[:, :m, :m])
        self.train_positions = torch.from_numpy(np.argwhere(inside == 0).astype(np.int64))
        if len(self.train_positions) == 0:
            raise ValueError("no training crop fits between the held-out tiles; use smaller crops or test_fraction")
        self.test_mask = torch.from_numpy(test_mask)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def train_batch(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random training crops and their labels (random horizontal flips)."""
        c = self.config.crop_size
        pick = self.train_positions[torch.randint(0, len(self.train_positions), (n,), generator=generator)]
        ar = torch.arange(c)
        rows = (pick[:, 1, None] + ar)[:, :, None]
        cols = (pick[:, 2, None] + ar)[:, None, :]
        x = self.images.permute(0, 2, 3, 1)[pick[:, 0, None, None], rows, cols].permute(0, 3, 1, 2)
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x.contiguous(), pick[:, 0].clone()


# --------------------------------------------------------------------------------------------------- training
def _check_net_task_config(net: Any, task: Any, config: Any) -> None:
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module (a V2Net), got {type(net).__name__}")
    if not isinstance(task, CropTask):
        raise TypeError(f"task must be a CropTask, got {type(task).__name__}")
    if not isinstance(config, RecognitionConfig):
        raise TypeError(f"config must be a RecognitionConfig, got {type(config).__name__}")


def train_v2net(net: V2Net, task: CropTask, config: RecognitionConfig, *, desc: str = "v2net"
                ) -> list[dict[str, float]]:
    """Train ``net`` (its trainable parts) with cross-entropy on random training crops; returns the loss log.

    Parameters
    ----------
    net
        The network (trained in place).
    task
        The crops.
    config
        Steps, batch size, optimiser and device.
    desc
        Label of the progress bar.

    Returns
    -------
    list of dict
        ``{"step", "loss"}`` per step.

    Raises
    ------
    TypeError
        Before training, for arguments of the wrong type.

    Examples
    --------
    >>> import lcl, data
    >>> cfg = lcl.RecognitionConfig(image_size=64, tile_size=32, crop_size=24, steps=3, batch_size=4,
    ...                             progress=False)
    >>> task = lcl.CropTask(cfg, data.natural_images(size=64, names=["camera", "moon"]))
    >>> net = lcl.build_v2net("pixels", None, lcl.BackEndConfig(widths=(8,), blocks=1), task.n_classes)
    >>> len(lcl.train_v2net(net, task, cfg))
    3
    """
    from tqdm.auto import tqdm

    _check_net_task_config(net, task, config)
    check_str("desc", desc)
    device = torch.device(config.device)
    net.to(device).train()
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    def factor(step: int) -> float:
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        t = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    gen = torch.Generator().manual_seed(config.seed + 1)
    log = []
    for step in tqdm(range(config.steps), desc=desc, disable=not config.progress, dynamic_ncols=True):
        x, y = task.train_batch(config.batch_size, gen)
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        log.append({"step": step + 1, "loss": float(loss.detach())})
    net.eval()
    return log


@torch.no_grad()
def evaluate_corruptions(net: nn.Module, task: CropTask, config: RecognitionConfig, *, batch_size: int = 256
                         ) -> xr.DataArray:
    """Accuracy on the held-out crops, clean (severity 0) and under each corruption and severity.

    Parameters
    ----------
    net
        The trained network.
    task
        The held-out crops.
    config
        Corruptions, severities, seed and device.
    batch_size
        Crops per forward pass (a positive integer).

    Raises
    ------
    TypeError, ValueError
        Before evaluating, for arguments of the wrong type or a ``batch_size < 1``.

    Returns
    -------
    xarray.DataArray
        Dims ``(corruption, severity)``; severity 0 (clean) repeats the same value for every corruption.

    Examples
    --------
    >>> import lcl, data
    >>> cfg = lcl.RecognitionConfig(image_size=64, tile_size=32, crop_size=24, corruptions=("contrast",),
    ...                             severities=(5,), progress=False)
    >>> task = lcl.CropTask(cfg, data.natural_images(size=64, names=["camera", "moon"]))
    >>> net = lcl.build_v2net("pixels", None, lcl.BackEndConfig(widths=(8,), blocks=1), task.n_classes)
    >>> acc = lcl.evaluate_corruptions(net, task, cfg)
    >>> acc.dims, acc.sizes["severity"]
    (('corruption', 'severity'), 2)
    """
    _check_net_task_config(net, task, config)
    batch_size = check_int("batch_size", batch_size, low=1)
    device = torch.device(config.device)
    net.eval().to(device)

    def accuracy(x: torch.Tensor) -> float:
        correct = 0
        for i in range(0, len(x), batch_size):
            logits = net(x[i:i + batch_size].to(device))
            correct += int((logits.argmax(1).cpu() == task.test_y[i:i + batch_size]).sum())
        return correct / len(x)

    clean = accuracy(task.test_x)
    severities = [0, *config.severities]
    values = np.zeros((len(config.corruptions), len(severities)))
    for ci, name in enumerate(config.corruptions):
        values[ci, 0] = clean
        for si, s in enumerate(config.severities, start=1):
            gen = torch.Generator().manual_seed(config.seed * 1000 + ci * 10 + s)
            values[ci, si] = accuracy(corrupt(task.test_x, name, s, generator=gen))
    return xr.DataArray(values, dims=("corruption", "severity"),
                        coords={"corruption": list(config.corruptions), "severity": severities},
                        name="accuracy")


def corruption_benchmark(lcl_model: V1V2 | None, backend: BackEndConfig, config: RecognitionConfig,
                         out_dir: str | os.PathLike | None = None, *, task: CropTask | None = None) -> xr.Dataset:
    """Train one back end per front end (see :data:`FRONT_ENDS`) and evaluate all under corruptions.

    Writes (atomically) into ``out_dir``: ``v2net_<front end>.pt`` (weights, configs, provenance, loss log),
    ``corruptions.nc`` (the results) and ``corruptions.png``/``.pdf`` (the figure).

    Parameters
    ----------
    lcl_model
        Trained LCL model (front end ``"lcl"``; its architecture is reused by ``"supervised"``).
    backend
        Back-end architecture, identical for every front end.
    config
        Task, training and evaluation settings.
    out_dir
        Output folder (``None``: nothing written).
    task
        A prepared :class:`CropTask` (default: built from ``config``).

    Returns
    -------
    xarray.Dataset
        ``accuracy (front_end, corruption, severity)``, ``chance`` attribute, ``final_loss (front_end)``.

    Raises
    ------
    TypeError, ValueError
        Before any training, for arguments of the wrong type, a crop smaller than the stage-2 receptive field,
        or front end ``"lcl"`` without a model.

    Examples
    --------
    >>> import lcl, data
    >>> cfg = lcl.RecognitionConfig(image_size=128, tile_size=64, crop_size=48, steps=2, batch_size=4,
    ...                             corruptions=("gaussian_noise",), severities=(3,), progress=False)
    >>> task = lcl.CropTask(cfg, data.natural_images(size=128, names=["camera", "moon"]))
    >>> model = lcl.V1V2(lcl.LCLConfig.preset("demo").model)
    >>> res = lcl.corruption_benchmark(model, lcl.BackEndConfig(widths=(8,), blocks=1), cfg, task=task)
    >>> res.accuracy.dims
    ('front_end', 'corruption', 'severity')
    """
    if lcl_model is not None and not isinstance(lcl_model, V1V2):
        raise TypeError(f"lcl_model must be an lcl.V1V2 or None, got {type(lcl_model).__name__}")
    if not isinstance(backend, BackEndConfig):
        raise TypeError(f"backend must be a BackEndConfig, got {type(backend).__name__}")
    if not isinstance(config, RecognitionConfig):
        raise TypeError(f"config must be a RecognitionConfig, got {type(config).__name__}")
    if task is not None and not isinstance(task, CropTask):
        raise TypeError(f"task must be a CropTask or None, got {type(task).__name__}")
    out = check_path("out_dir", out_dir, none=True)
    task = task or CropTask(config)
    if lcl_model is not None and config.crop_size < lcl_model.receptive_field(2):
        raise ValueError(f"crop_size {config.crop_size} is smaller than the stage-2 receptive field "
                         f"({lcl_model.receptive_field(2)} px)")
    if "lcl" in config.front_ends and lcl_model is None:
        raise ValueError("front end 'lcl' needs a trained LCL model")
    results, losses_ = [], []
    for i, kind in enumerate(config.front_ends):
        net = build_v2net(kind, lcl_model, backend, task.n_classes, seed=config.seed + i)
        log = train_v2net(net, task, config, desc=f"v2net[{kind}]")
        results.append(evaluate_corruptions(net, task, config))
        losses_.append(float(np.mean([r["loss"] for r in log[-max(1, len(log) // 10):]])))
        if out is not None:
            payload = {"model": {k: v.detach().cpu() for k, v in net.state_dict().items()}, "front_end": kind,
                       "backend": dataclasses.asdict(backend), "recognition": dataclasses.asdict(config),
                       "classes": task.classes, "log": log,
                       "provenance": data.provenance({"backend": dataclasses.asdict(backend),
                                                      "recognition": dataclasses.asdict(config)}, config.seed)}
            with data.atomic_write(out / f"v2net_{kind}.pt") as tmp:
                torch.save(payload, tmp)
        if lcl_model is not None and kind == "lcl":
            lcl_model.requires_grad_(False)
    ds = xr.Dataset(
        {"accuracy": xr.concat(results, dim="front_end").assign_coords(front_end=list(config.front_ends)),
         "final_loss": ("front_end", np.array(losses_))},
        attrs={"chance": 1.0 / task.n_classes, "n_test": int(len(task.test_y)), "n_classes": task.n_classes,
               "classes": ",".join(task.classes)},
    )
    if out is not None:
        data.save(ds, out / "corruptions.nc",
                  config={"backend": dataclasses.asdict(backend), "recognition": dataclasses.asdict(config)},
                  seed=config.seed)
        plot_corruptions(ds, out / "corruptions")
    return ds


def plot_corruptions(results: xr.Dataset | str | os.PathLike, path: str | os.PathLike) -> list[Path]:
    """Accuracy against severity, one panel per corruption, one line per front end (PNG + PDF).

    Parameters
    ----------
    results
        The Dataset of :func:`corruption_benchmark` or the ``corruptions.nc`` file it wrote.
    path
        Output path; the suffix is replaced by ``.png`` and ``.pdf``.

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    TypeError
        If ``results`` is neither a Dataset nor a path, or ``path`` is not a path.
    ValueError
        If the results lack an ``accuracy (front_end, corruption, severity)`` variable.

    Examples
    --------
    >>> import numpy as np, xarray as xr, lcl, tempfile, pathlib
    >>> acc = xr.DataArray(np.random.rand(2, 1, 3), dims=("front_end", "corruption", "severity"),
    ...                    coords={"front_end": ["lcl", "pixels"], "corruption": ["contrast"], "severity": [0, 1, 2]})
    >>> files = lcl.plot_corruptions(xr.Dataset({"accuracy": acc}, attrs={"chance": 0.1}),
    ...                              pathlib.Path(tempfile.mkdtemp()) / "c")
    >>> [f.suffix for f in files]
    ['.png', '.pdf']
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = check_path("path", path)
    ds = data.load(check_path("results", results)) if not isinstance(results, xr.Dataset) else results
    if "accuracy" not in ds or set(ds["accuracy"].dims) != {"front_end", "corruption", "severity"}:
        raise ValueError("results need an accuracy (front_end, corruption, severity) variable, as "
                         "lcl.corruption_benchmark writes")
    acc = ds["accuracy"]
    names = [str(c) for c in acc.corruption.values]
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.6), squeeze=False, sharey=True)
    for ax, name in zip(axes[0], names):
        for fe in acc.front_end.values:
            a = acc.sel(front_end=fe, corruption=name)
            ax.plot(a.severity.values, a.values, marker="o", label=str(fe))
        if "chance" in ds.attrs:
            ax.axhline(float(ds.attrs["chance"]), color="0.6", lw=0.8, ls="--")
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.set_xlabel("severity")
        ax.set_ylim(0, 1)
    axes[0, 0].set_ylabel("accuracy (held-out crops)")
    axes[0, -1].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    files = []
    for suffix in (".png", ".pdf"):
        target = Path(path).with_suffix(suffix)
        with data.atomic_write(target) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=150)
        files.append(target)
    plt.close(fig)
    return files
