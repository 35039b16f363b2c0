"""Stage 2: a convolutional autoencoder that enhances linear reconstructions, with seeded, resumable training."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import data
from data._checks import check_array, check_bool, check_device, check_int, check_path, check_seed

from ._config import EnhancerConfig, EnhancerTrainConfig
from ._distributed import check_same_everywhere, global_batch_norm

__all__ = ["Enhancer", "train_enhancer", "load_enhancer"]


def _block(c_in: int, c_out: int, k: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class Enhancer(nn.Module):
    """Convolutional autoencoder on linear reconstructions (Parthasarathy et al. 2017).

    Encoder ``conv -> batch norm -> ReLU`` per layer (paper: 64@7x7, 128@5x5, 256@3x3, 256@3x3, stride 2);
    the decoder mirrors it (bilinear upsampling where the encoder strided, then ``conv -> batch norm -> ReLU``),
    ending with a convolution to one channel. With ``residual=True`` the network's output is added to its input;
    with ``skips=True`` each decoder stage also adds the encoder features of its resolution (U-Net style, ours).

    Parameters
    ----------
    config
        Architecture (default: the paper's).
    seed
        Seed of the initial weights (the global torch RNG is left untouched).

    Examples
    --------
    >>> import torch
    >>> from decoding import Enhancer, EnhancerConfig
    >>> net = Enhancer(EnhancerConfig(width=0.125), seed=0)
    >>> net(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 1, 32, 32])
    """

    def __init__(self, config: EnhancerConfig | None = None, *, seed: int = 0) -> None:
        super().__init__()
        config = EnhancerConfig() if config is None else config
        if not isinstance(config, EnhancerConfig):
            raise TypeError(f"config must be an EnhancerConfig, got {type(config).__name__}")
        seed = check_seed("seed", seed)
        self.config = config
        chans = config.scaled_channels
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            enc: list[nn.Module] = []
            c_in = 1
            for c, k, s in zip(chans, config.kernels, config.strides):
                enc.append(nn.Sequential(*_block(c_in, c, k, s)))
                c_in = c
            dec: list[nn.Module] = []  # dec[i] undoes enc[i]; applied from the deepest layer up
            for i in range(len(chans)):
                k = config.kernels[i]
                up = [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)] if config.strides[i] == 2 \
                    else []
                if i > 0:
                    dec.append(nn.Sequential(*up, *_block(chans[i], chans[i - 1], k, 1)))
                else:
                    dec.append(nn.Sequential(*up, nn.Conv2d(chans[0], 1, k, padding=k // 2)))
            self.encoder = nn.ModuleList(enc)
            self.decoder = nn.ModuleList(dec)
            if config.residual:  # start as the identity map: the linear reconstruction
                nn.init.zeros_(self.decoder[0][-1].weight)
                nn.init.zeros_(self.decoder[0][-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Enhance ``(n, 1, y, x)`` (or ``(n, y, x)``) reconstructions; sides must be multiples of the
        downsampling factor."""
        squeeze = x.ndim == 3
        if squeeze:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"input must be (n, 1, y, x) or (n, y, x), got shape {tuple(x.shape)}")
        f = self.config.downsampling
        if x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(f"image sides must be multiples of {f}, got {tuple(x.shape[-2:])}")
        feats, h = [], x
        for stage in self.encoder:
            h = stage(h)
            feats.append(h)
        for i in reversed(range(len(self.decoder))):
            h = self.decoder[i](h)
            if self.config.skips and i > 0:
                h = h + feats[i - 1]
        if self.config.residual:
            h = h + x
        return h[:, 0] if squeeze else h

    def enhance(self, reconstructions: Any, *, batch_size: int = 64, device: str | torch.device | None = None
                ) -> np.ndarray:
        """Apply the (evaluation-mode) network to an array of reconstructions, in batches.

        Parameters
        ----------
        reconstructions
            Array ``(n, y, x)``.
        batch_size
            Images per batch.
        device
            Device to run on (default: where the parameters are).

        Returns
        -------
        numpy.ndarray
            ``(n, y, x)`` float32.

        Examples
        --------
        >>> import numpy as np
        >>> from decoding import Enhancer, EnhancerConfig
        >>> net = Enhancer(EnhancerConfig(width=0.125))
        >>> x = np.random.default_rng(0).random((3, 16, 16)).astype("float32")
        >>> bool(np.allclose(net.enhance(x), x))  # a fresh residual enhancer is the identity
        True
        """
        x = check_array("reconstructions", reconstructions, dtype=np.float32)
        if x.ndim != 3 or x.shape[0] == 0:
            raise ValueError(f"reconstructions must be a non-empty (n, y, x) array, got shape {x.shape}")
        batch_size = check_int("batch_size", batch_size, low=1)
        device = check_device("device", device, none=True)
        dev = next(self.parameters()).device if device is None else device
        was_training = self.training
        self.eval()
        out = np.empty_like(x)
        self.to(dev)
        try:
            with torch.no_grad():
                for s in range(0, len(x), batch_size):
                    out[s:s + batch_size] = self(torch.from_numpy(x[s:s + batch_size]).to(dev)).cpu().numpy()
        finally:
            self.train(was_training)
        return out


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(data.derive_seed(seed, int(epoch)))


def _batches(n: int, size: int, patch: int, cfg: EnhancerTrainConfig, epoch: int, rank: int = 0, world: int = 1,
             seed: int = 0):
    """Per epoch: a permutation, crop corners and D4 transforms, all from one generator seeded by (seed, epoch),
    drawn identically in every process and cut into global batches of ``batch_size x world``; yields this
    process's slice of each (indices, corners, transforms) and the global batch's size. A last, shorter global
    batch is split as evenly as possible (a process may get nothing)."""
    g = _epoch_generator(seed, epoch)
    order = torch.randperm(n, generator=g)
    corners = torch.randint(0, size - patch + 1, (n, 2), generator=g)
    d4 = torch.randint(0, 8, (n,), generator=g) if cfg.flips else torch.zeros(n, dtype=torch.long)
    step = cfg.batch_size * world
    for s in range(0, n, step):
        glob = min(step, n - s)
        sl = slice(s + rank * glob // world, s + (rank + 1) * glob // world)
        yield order[sl], corners[sl], d4[sl], glob


def _cut(images: torch.Tensor, idx: torch.Tensor, corners: torch.Tensor, d4: torch.Tensor, patch: int
         ) -> torch.Tensor:
    if len(idx) == 0:
        return images.new_zeros((0, 1, patch, patch))
    ar = torch.arange(patch)
    rows = (corners[:, 0, None] + ar)[:, :, None]
    cols = (corners[:, 1, None] + ar)[:, None, :]
    out = images[idx[:, None, None], rows, cols]
    res = []
    for img, t in zip(out, d4.tolist()):
        if t & 1:
            img = img.flip(-1)
        if t & 2:
            img = img.flip(-2)
        if t & 4:
            img = img.transpose(-1, -2)
        res.append(img)
    return torch.stack(res)[:, None]


def _lr(cfg: EnhancerTrainConfig, step: int, total: int, world: int = 1) -> float:
    """Learning rate of global step ``step`` of ``total``: the peak scaled for the global batch, times the
    schedule (:func:`data.lr_factor`)."""
    peak = data.scaled_lr(cfg.lr, cfg.batch_size * world, cfg.lr_scaling, cfg.reference_batch)
    return peak * data.lr_factor(step, total, warmup_steps=cfg.warmup_steps, schedule=cfg.schedule)


#: EnhancerTrainConfig fields that may differ between an interrupted training and its resumption (``epochs``: a finished
#: run may be extended).
_RUNTIME = ("train.epochs", "train.checkpoint_every")


def train_enhancer(model: Enhancer, inputs: Any, targets: Any, config: EnhancerTrainConfig | None = None, *,
                   seed: int = 0, checkpoint: str | Path | None = None, resume: bool = False,
                   device: str | torch.device = "cpu", progress: bool = True) -> dict[str, list[float]]:
    """Train an enhancer to map reconstructions to images (MSE, Adam), with checkpoints and exact resume.

    Each epoch visits every pair once in an order drawn, with crop corners and flips, from a generator seeded by
    ``data.derive_seed(seed, epoch)``; the learning rate follows a linear warm-up and then a cosine (or constant)
    schedule of the global step (:func:`data.lr_factor`); with ``config.grad_clip > 0`` the gradients' global norm
    is clipped to it. Checkpoints (the format of :func:`data.save_checkpoint`) hold weights, optimizer and RNG
    states, the step, both configs and the seed (``config["enhancer"]``, ``config["train"]``, ``config["seed"]``),
    the number of processes, provenance (git commit, version) and the ``epoch`` and loss ``history``, written
    atomically. Resuming from a checkpoint therefore continues exactly as the uninterrupted run would (same device
    and thread count); a resume with another seed or settings is refused.

    Distributed (a process group is initialised, e.g. by :func:`data.init_distributed` under ``torchrun``): the
    network is wrapped in ``DistributedDataParallel`` (gloo on CPUs, NCCL on GPUs; plain ``"cuda"`` means GPU
    ``LOCAL_RANK``). Every process must pass the same ``inputs`` and ``targets`` and see the same checkpoint
    (both checked); each epoch's order is drawn identically in every process and cut into global batches of
    ``config.batch_size x processes``, of which each process trains on its slice. Batch norm uses the statistics
    of the global batch and the loss is the mean over the global batch, so N processes compute what one process
    does with an N-times larger ``batch_size`` (to float rounding). Only rank 0 writes the checkpoint and shows a
    progress bar; a resumed run must have as many processes as the checkpoint's.

    Parameters
    ----------
    model
        The network (its weights are updated in place).
    inputs
        Reconstructions ``(n, size, size)``.
    targets
        Original images ``(n, size, size)``.
    config
        Training settings.
    seed
        Seed of every epoch's order, crops and flips (:func:`run_study` passes
        ``data.derive_seed(StudyConfig.seed, "enhancer", "batches")``); a resumed run must use the same.
    checkpoint
        Path of the checkpoint file (``.pt``), written every ``config.checkpoint_every`` epochs and at the end.
    resume
        Continue from ``checkpoint`` if it exists (its architecture and training settings, except ``epochs``,
        and its number of processes must match); a finished run is not retrained.
    device
        Torch device.
    progress
        Show a progress bar (rank 0 only).

    Returns
    -------
    dict
        ``{"epoch": [...], "train_loss": [...], "seconds": [...]}``, one entry per completed epoch (including
        those before a resume); the loss is that of the global batch, the same in every process.

    Raises
    ------
    TypeError
        For arguments of the wrong type (non-numeric or complex images, a non-path ``checkpoint``, a non-bool
        ``resume`` or ``progress``), before any training.
    ValueError
        For mismatched shapes, NaN, images too small for the patch size, an unknown device, a checkpoint from
        another setup or another number of processes, or inputs that differ between processes.

    Examples
    --------
    >>> import numpy as np
    >>> from decoding import Enhancer, EnhancerConfig, EnhancerTrainConfig, train_enhancer
    >>> rng = np.random.default_rng(0)
    >>> y = rng.random((8, 16, 16)).astype("float32")
    >>> x = y + 0.1 * rng.normal(size=y.shape).astype("float32")
    >>> net = Enhancer(EnhancerConfig(width=0.125, channels=(64, 128), kernels=(3, 3), strides=(2, 2)))
    >>> cfg = EnhancerTrainConfig(epochs=2, batch_size=4, patch_size=8)
    >>> hist = train_enhancer(net, x, y, cfg, progress=False)
    >>> hist["epoch"]
    [1, 2]
    """
    config = EnhancerTrainConfig() if config is None else config
    if not isinstance(model, Enhancer):
        raise TypeError(f"model must be an Enhancer, got {type(model).__name__}")
    if not isinstance(config, EnhancerTrainConfig):
        raise TypeError(f"config must be an EnhancerTrainConfig, got {type(config).__name__}")
    x = check_array("inputs", inputs, dtype=np.float32)
    y = check_array("targets", targets, dtype=np.float32)
    ckpt_path = check_path("checkpoint", checkpoint, none=True)
    resume = check_bool("resume", resume)
    seed = check_seed("seed", seed)
    check_device("device", device)
    progress = check_bool("progress", progress)
    if x.shape != y.shape or x.ndim != 3:
        raise ValueError(f"inputs {x.shape} and targets {y.shape} must be equal (n, size, size) arrays")
    if x.shape[0] == 0:
        raise ValueError("empty batch: no training pairs")
    if x.shape[1] != x.shape[2]:
        raise ValueError(f"training images must be square, got {x.shape[1]} x {x.shape[2]}")
    size = x.shape[1]
    patch = config.patch_size or size
    if patch > size:
        raise ValueError(f"patch_size {patch} exceeds the image size {size}")
    if patch % model.config.downsampling:
        raise ValueError(f"patch size {patch} must be a multiple of the downsampling {model.config.downsampling}")
    rank, world = data.rank_and_world()
    dev = data.process_device(device)
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: dict[str, list[float]] = {"epoch": [], "train_loss": [], "seconds": []}
    run = {"enhancer": asdict(model.config), "train": asdict(config), "seed": seed}
    start_epoch = 0
    if resume and ckpt_path is not None and ckpt_path.is_file():
        state = data.load_checkpoint(ckpt_path, config=run, runtime=_RUNTIME, map_location=dev)
        data.resume_state(state, model=model, optimizer=opt)
        history = state["history"]
        start_epoch = int(state["epoch"])
    if world > 1:
        check_same_everywhere(x, y, np.asarray(start_epoch))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    steps_per_epoch = math.ceil(len(x) / (config.batch_size * world))
    total = steps_per_epoch * config.epochs
    bar = data.progress_bar(total, initial=start_epoch * steps_per_epoch, desc="enhancer", enabled=progress)
    with contextlib.ExitStack() as stack:
        stack.callback(bar.close)
        if world > 1:
            stack.enter_context(global_batch_norm(model))
        # built after every process has read the checkpoint (the DDP constructor is collective)
        net = data.wrap_ddp(model, dev, compile=config.compile)
        for epoch in range(start_epoch, config.epochs):
            t0, losses = time.perf_counter(), []
            for i, (idx, corners, d4, glob) in enumerate(_batches(len(x), size, patch, config, epoch, rank, world,
                                                                       seed)):
                step = epoch * steps_per_epoch + i
                xb = _cut(xt, idx, corners, d4, patch).to(dev)
                yb = _cut(yt, idx, corners, d4, patch).to(dev)
                with data.autocast(dev, config.precision):
                    out = net(xb)
                sse = ((out.float() - yb) ** 2).sum()
                # mean over the global batch; DDP averages the processes' gradients, hence the factor world
                n_global = glob * patch * patch
                data.optimizer_step(opt, sse * (world / n_global), lr=_lr(config, step, total, world),
                                    grad_clip=config.grad_clip)
                total_sse = sse.detach()
                if world > 1:
                    torch.distributed.all_reduce(total_sse)
                losses.append(float(total_sse) / n_global)
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4g}")
            history["epoch"].append(epoch + 1)
            history["train_loss"].append(float(np.mean(losses)))
            history["seconds"].append(time.perf_counter() - t0)
            if ckpt_path is not None and ((epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs):
                data.save_checkpoint(ckpt_path, model=model, optimizer=opt, step=(epoch + 1) * steps_per_epoch,
                                     config=run, seed=seed, epoch=epoch + 1, history=history)
    model.eval()
    return history


def load_enhancer(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[Enhancer, dict[str, Any]]:
    """Load a trained enhancer from a checkpoint written by :func:`train_enhancer`.

    Parameters
    ----------
    path
        The ``.pt`` checkpoint.
    device
        Where to put the weights.

    Returns
    -------
    model : Enhancer
        In evaluation mode.
    state : dict
        The checkpoint without weights and optimizer state: ``epoch``, ``history``, ``step``, ``config``
        (``enhancer`` and ``train``), ``world_size``, ``provenance``, ...

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    TypeError
        If ``path`` is not a path or ``device`` not a device.
    ValueError
        Naming ``path``, if the file is not a readable enhancer checkpoint (truncated, say).

    Examples
    --------
    >>> import numpy as np, pathlib, tempfile
    >>> from decoding import Enhancer, EnhancerConfig, EnhancerTrainConfig, train_enhancer, load_enhancer
    >>> cfg = EnhancerConfig(width=0.125, channels=(64,), kernels=(3,), strides=(2,))
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "e.pt"
    >>> x = np.zeros((4, 8, 8), dtype="float32")
    >>> _ = train_enhancer(Enhancer(cfg), x, x, EnhancerTrainConfig(epochs=1, patch_size=0), checkpoint=p,
    ...                    progress=False)
    >>> load_enhancer(p)[1]["epoch"]
    1
    """
    path = check_path("path", path)
    device = check_device("device", device)
    state = data.load_checkpoint(path, map_location=device)
    try:
        config = EnhancerConfig(**state["config"]["enhancer"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: not an enhancer checkpoint of this version ({type(exc).__name__}: "
                         f"{exc})") from exc
    model = Enhancer(config).to(device)
    model.load_state_dict(state["model"])
    model.eval()
    meta = {k: v for k, v in state.items() if k not in ("model", "optimizer")}
    return model, meta
