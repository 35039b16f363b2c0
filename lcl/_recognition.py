"""LCL-V2Net's recognition task: crops of the bundled images held out by tile, the back end's training (resumable),
accuracy under corruptions, and the benchmark of front ends with its figure."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

import data
from data._checks import check_bool, check_int, check_path, check_str

from ._corrupt import corrupt
from ._model import V1V2
from ._recognition_config import BackEndConfig, RecognitionConfig
from ._v2net import V2Net, build_v2net

__all__ = ["CropTask", "train_v2net", "evaluate_corruptions", "corruption_benchmark", "plot_corruptions"]


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
        rng = np.random.default_rng(data.derive_seed(config.seed, "split"))
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


#: RecognitionConfig fields that may change between an interrupted training and its resumption.
_RUNTIME = ("recognition.device", "recognition.progress", "recognition.front_ends", "recognition.corruptions",
            "recognition.severities")


def train_v2net(net: V2Net, task: CropTask, config: RecognitionConfig, *, desc: str = "v2net",
                checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 100, resume: bool = False
                ) -> list[dict[str, float]]:
    """Train ``net`` (its trainable parts) with cross-entropy on random training crops; returns the loss log.

    AdamW with the learning rate ``config.lr x data.lr_factor(step, config.steps, warmup_steps=...)`` (linear
    warm-up, cosine decay to 0) and, if ``config.grad_clip > 0``, gradients clipped to that global norm.
    With ``checkpoint`` the training state (weights, optimizer, RNG, step, config, log, provenance: the format of
    :func:`data.save_checkpoint`) is written there atomically every ``checkpoint_every`` steps and at the end;
    ``resume=True`` continues from it, and on a CPU the resumed run ends with the weights of an uninterrupted one.

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
    checkpoint
        File of the training checkpoint (``None``: none).
    checkpoint_every
        Steps between checkpoints.
    resume
        Continue from ``checkpoint`` if that file exists (its config must equal ``config`` but for ``device``,
        ``progress``, ``front_ends``, ``corruptions`` and ``severities``, and its classes ``task``'s); a
        finished run is not retrained.

    Returns
    -------
    list of dict
        ``{"step", "loss"}`` per step (including those before a resume).

    Raises
    ------
    TypeError, ValueError
        Before training, for arguments of the wrong type, ``resume=True`` without ``checkpoint``, a
        checkpoint written with other settings or weights that do not fit ``net``.

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
    _check_net_task_config(net, task, config)
    check_str("desc", desc)
    path = check_path("checkpoint", checkpoint, none=True)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, low=1)
    resume = check_bool("resume", resume)
    if resume and path is None:
        raise ValueError("resume=True needs the checkpoint file to resume from")
    device = torch.device(config.device)
    net.to(device).train()
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(data.derive_seed(config.seed, "crops"))
    run = {"recognition": dataclasses.asdict(config), "classes": list(task.classes)}
    log: list[dict[str, float]] = []
    start = 0
    if resume and path.is_file():
        state = data.load_checkpoint(path, config=run, runtime=_RUNTIME)
        start = data.resume_state(state, model=net, optimizer=opt, generators={"crops": gen})
        log = list(state["log"])
    bar = data.progress_bar(config.steps, initial=start, desc=desc, enabled=config.progress)
    try:
        for step in range(start, config.steps):
            x, y = task.train_batch(config.batch_size, gen)
            loss = F.cross_entropy(net(x.to(device)), y.to(device))
            data.optimizer_step(opt, loss, grad_clip=config.grad_clip,
                                lr=config.lr * data.lr_factor(step, config.steps, warmup_steps=config.warmup_steps))
            log.append({"step": step + 1, "loss": float(loss.detach())})
            bar.update(1)
            if path is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == config.steps):
                data.save_checkpoint(path, model=net, optimizer=opt, step=step + 1, config=run, seed=config.seed,
                                     generators={"crops": gen}, log=log)
    finally:
        bar.close()
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
            gen = torch.Generator().manual_seed(data.derive_seed(config.seed, "corruption", name, s))
            values[ci, si] = accuracy(corrupt(task.test_x, name, s, generator=gen))
    return xr.DataArray(values, dims=("corruption", "severity"),
                        coords={"corruption": list(config.corruptions), "severity": severities},
                        name="accuracy")


def corruption_benchmark(lcl_model: V1V2 | None, backend: BackEndConfig, config: RecognitionConfig,
                         out_dir: str | os.PathLike | None = None, *, task: CropTask | None = None,
                         resume: bool = False) -> xr.Dataset:
    """Train one back end per front end (see :data:`FRONT_ENDS`) and evaluate all under corruptions.

    Writes (atomically) into ``out_dir``: ``v2net_<front end>.pt`` (the training checkpoint of
    :func:`train_v2net`: weights, optimizer, RNG, step, config, loss log, provenance; every 100 steps and at the
    end), ``corruptions.nc`` (the results, with the back-end and recognition configs) and
    ``corruptions.png``/``.pdf`` (the figure).

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
    resume
        Continue each front end's training from its ``v2net_<front end>.pt`` in ``out_dir`` where there is one
        (finished ones are only evaluated).

    Returns
    -------
    xarray.Dataset
        ``accuracy (front_end, corruption, severity)``, ``chance`` attribute, ``final_loss (front_end)``.

    Raises
    ------
    TypeError, ValueError
        Before any training, for arguments of the wrong type, a crop smaller than the stage-2 receptive field,
        front end ``"lcl"`` without a model, ``resume=True`` without ``out_dir``.

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
    resume = check_bool("resume", resume)
    if resume and out is None:
        raise ValueError("resume=True needs the out_dir that holds the checkpoints")
    task = task or CropTask(config)
    if lcl_model is not None and config.crop_size < lcl_model.receptive_field(2):
        raise ValueError(f"crop_size {config.crop_size} is smaller than the stage-2 receptive field "
                         f"({lcl_model.receptive_field(2)} px)")
    if "lcl" in config.front_ends and lcl_model is None:
        raise ValueError("front end 'lcl' needs a trained LCL model")
    results, losses_ = [], []
    for kind in config.front_ends:
        net = build_v2net(kind, lcl_model, backend, task.n_classes, seed=data.derive_seed(config.seed, "weights", kind))
        log = train_v2net(net, task, config, desc=f"v2net[{kind}]", resume=resume,
                          checkpoint=None if out is None else out / f"v2net_{kind}.pt")
        results.append(evaluate_corruptions(net, task, config))
        losses_.append(float(np.mean([r["loss"] for r in log[-max(1, len(log) // 10):]])))
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
    from matplotlib.figure import Figure

    path = check_path("path", path)
    ds = data.load(check_path("results", results)) if not isinstance(results, xr.Dataset) else results
    if "accuracy" not in ds or set(ds["accuracy"].dims) != {"front_end", "corruption", "severity"}:
        raise ValueError("results need an accuracy (front_end, corruption, severity) variable, as "
                         "lcl.corruption_benchmark writes")
    acc = ds["accuracy"]
    names = [str(c) for c in acc.corruption.values]
    with data.figure_style():
        fig = Figure(figsize=(2.6 * len(names), 2.6))
        axes = fig.subplots(1, len(names), squeeze=False, sharey=True)
        _draw_corruptions(axes, acc, names, ds.attrs.get("chance"))
        return data.save_figure(fig, path, width="double" if len(names) > 2 else "single", height=2.4)


def _draw_corruptions(axes: Any, acc: xr.DataArray, names: list[str], chance: float | None) -> None:
    for ax, name in zip(axes[0], names, strict=True):
        for fe in acc.front_end.values:
            a = acc.sel(front_end=fe, corruption=name)
            ax.plot(a.severity.values, a.values, marker="o", label=str(fe))
        if chance is not None:
            ax.axhline(float(chance), color="0.6", lw=0.8, ls="--")
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("severity")
        ax.set_ylim(0, 1)
    axes[0, 0].set_ylabel("accuracy (held-out crops)")
    axes[0, -1].legend()


