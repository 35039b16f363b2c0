"""Layerwise complexity-matched training: stage 1, frozen, then stage 2; checkpoints, JSON-lines log, resume."""

from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

import data
from data import init_distributed  # re-exported as lcl.init_distributed
from data._checks import check_bool, check_path

from . import losses
from ._config import LCLConfig, validate_config
from ._deform import _coarse, _displacement_from_noise, _warp
from ._model import V1V2
from ._phases import Phase, _GatherBatch, _phases, _PhaseForward, channels_last

__all__ = ["Trainer", "train", "init_distributed", "load_model", "load_checkpoint", "Phase", "CHECKPOINT", "MODEL_FILE",
           "LOG_FILE"]

CHECKPOINT = "checkpoint.pt"
MODEL_FILE = "model.pt"
LOG_FILE = "log.jsonl"
# Fields that may differ between an interrupted run and its resumption without changing the result.
_RUNTIME = ("train.device", "train.progress", "train.checkpoint_every", "train.log_every", "data.workers")


@functools.lru_cache(maxsize=4)
def _image_tensor(source: str, folder: str, size: int, max_images: int, channels: int) -> torch.Tensor:
    """The training images as a (n, channel, size, size) float32 tensor (cached per process; never modified)."""
    if source == "natural":
        stimuli = data.natural_images(size=size)
    else:
        stimuli = data.image_folder(folder, size=size, max_images=max_images or None)
    return data.stimuli_to_tensor(stimuli, channels=channels)


class Trainer:
    """Trains a :class:`lcl.V1V2` with layerwise complexity-matched deformations (or an ablation).

    Each step cuts ``batch_size`` random patches, makes two views of each with independent smooth random
    deformations whose RMS amplitude is matched to the receptive field of the stage being trained (see
    :class:`lcl.DeformConfig`), passes them through the model (stage 1 frozen, in ``torch.no_grad``, while stage 2
    trains) and takes an AdamW step on the loss of the two views' pooled features, with the learning rate of
    :func:`data.lr_factor` over the phase (warm-up, cosine to ``min_lr_ratio``) and gradients clipped to
    ``optim.grad_clip`` (the training core in ``data``: :func:`data.optimizer_step`, :func:`data.wrap_ddp`,
    :func:`data.autocast`).

    Files in ``out_dir`` (all written atomically, by rank 0 only under ``torchrun``): ``checkpoint.pt`` (the format
    of :func:`data.save_checkpoint`: weights, optimizer and RNG states, step, config, provenance; with the phase,
    the log so far, the stream position and the silent fractions), ``log.jsonl`` (one JSON object per
    ``log_every`` steps; ``lr`` is the learning rate of the step logged) and, at the end, ``model.pt`` (weights,
    config, provenance).

    Parameters
    ----------
    config
        The run; validated before anything is loaded.
    out_dir
        Folder for checkpoints and the log (``None``: keep nothing on disk).
    resume
        Continue from ``out_dir/checkpoint.pt``; the config must equal the checkpoint's (runtime fields such as
        ``device``, ``progress``, ``checkpoint_every``, ``log_every`` excepted). On CPU the resumed run ends with
        weights identical to an uninterrupted one.

    Raises
    ------
    TypeError
        For an ``out_dir`` that is not a path (str or ``os.PathLike``) or ``None``, a ``resume`` that is not
        ``True``/``False``, a ``config`` that is not an :class:`lcl.LCLConfig`.
    ValueError
        For an invalid ``config`` (see :func:`lcl.validate_config`), ``resume=True`` without ``out_dir``, a
        checkpoint written with another config or number of processes.
    FileNotFoundError
        For ``resume=True`` when ``out_dir`` holds no checkpoint.

    Examples
    --------
    >>> import lcl
    >>> cfg = lcl.LCLConfig.preset("demo", train={"steps": (2, 2), "batch_size": 4, "progress": False},
    ...                                    model={"stage1": {"channels": 4}, "stage2": {"channels": 4}})
    >>> trainer = lcl.Trainer(cfg)
    >>> model = trainer.run()
    >>> [r["phase"] for r in trainer.log][-1], trainer.global_step
    ('stage2', 4)
    """

    def __init__(self, config: LCLConfig, out_dir: str | os.PathLike | None = None, *, resume: bool = False):
        out_dir = check_path("out_dir", out_dir, none=True)
        resume = check_bool("resume", resume)
        self.config = validate_config(config)
        self.out_dir = out_dir
        if resume and self.out_dir is None:
            raise ValueError("resume=True needs the out_dir that holds the checkpoint")
        self.rank, self.world_size = data.rank_and_world()
        tc = config.train
        self.device = data.process_device(tc.device)  # plain "cuda" under torchrun: GPU LOCAL_RANK
        self.phases = _phases(config)
        self.loss_fn = losses.get(tc.loss)
        self.loss_options = dict(tc.loss_options)
        torch.manual_seed(data.derive_seed(config.seed, "weights"))
        self.model = V1V2(config.model).to(self.device)
        self.rf_sizes = (self.model.receptive_field(1), self.model.receptive_field(2))
        self.generator = torch.Generator().manual_seed(data.derive_seed(config.seed, "batches"))
        self.phase_index, self.step = 0, 0
        self.log: list[dict[str, Any]] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self._peak_lr = self._last_lr = 0.0
        self._ddp: torch.nn.Module | None = None
        self._stream: Iterator[torch.Tensor] | None = None
        self._images: torch.Tensor | None = None
        self._wall = 0.0
        self.silent: dict[str, float] = {}
        state = None
        if resume:
            path = self.out_dir / CHECKPOINT
            if not path.is_file():
                raise FileNotFoundError(f"no checkpoint to resume from: {path}")
            state = data.load_checkpoint(path, config=config.to_dict(), runtime=_RUNTIME)
        self._load_images()
        if state is not None:
            self._restore(state)

    # ----------------------------------------------------------------------------------------------- set-up
    def _load_images(self) -> None:
        d = self.config.data
        if d.streaming:
            from ._stream import patch_stream

            self._stream = patch_stream(d, self.config.train, seed=data.derive_seed(self.config.seed, "stream"),
                                        rank=self.rank, world_size=self.world_size, generator=self.generator)
            return
        # In memory, every process holds all images; each step draws one global batch from the shared seed and
        # each process takes its slice (so N processes compute exactly the single-process step on N x batch).
        images = _image_tensor(d.source, d.folder, d.image_size, d.max_images, self.config.model.in_channels)
        self._images = images.to(self.device)

    # ----------------------------------------------------------------------------------------------- state
    def _restore(self, state: dict[str, Any]) -> None:
        self.step = data.resume_state(state, model=self.model, generators={"patches": self.generator})
        self.phase_index = state["phase_index"]
        self.log = list(state["log"])
        self._wall = state["wall_s"]
        self.silent = dict(state["silent_fraction"])
        if self._stream is not None:
            self._stream.load_state_dict(state["stream"])  # type: ignore[attr-defined]
        if self.phase_index < len(self.phases):
            self._start_phase()
            if state["optimizer"] is not None:
                self.optimizer.load_state_dict(state["optimizer"])

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoint.pt`` atomically (rank 0 only; :func:`data.save_checkpoint`); return its path."""
        if self.out_dir is None or self.rank != 0:
            return None
        stream = self._stream.state_dict() if self._stream is not None else None  # type: ignore[attr-defined]
        path = data.save_checkpoint(
            self.out_dir / CHECKPOINT, model=self.model, optimizer=self.optimizer, step=self.step,
            config=self.config.to_dict(), seed=self.config.seed, generators={"patches": self.generator},
            phase_index=self.phase_index, log=list(self.log), stream=stream, wall_s=self._wall,
            silent_fraction=dict(self.silent), complete=self.phase_index >= len(self.phases))
        self._write_log()
        return path

    def _write_log(self) -> None:
        if self.out_dir is None or self.rank != 0:
            return
        with data.atomic_write(self.out_dir / LOG_FILE) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in self.log))

    # ----------------------------------------------------------------------------------------------- phases
    @property
    def global_step(self) -> int:
        """Steps taken so far over all phases."""
        return sum(p.steps for p in self.phases[:self.phase_index]) + self.step

    @property
    def total_steps(self) -> int:
        """Steps of the whole run."""
        return sum(p.steps for p in self.phases)

    @property
    def phase(self) -> Phase:
        """The current phase."""
        return self.phases[min(self.phase_index, len(self.phases) - 1)]

    def probe_patches(self, n: int = 256, salt: int = 0) -> torch.Tensor:
        """``n`` patches from a generator of their own (seeded by the run's seed and ``salt``), the same in every
        process and unaffected by (and not affecting) the training stream; streaming runs take the next batch.

        Used to estimate input means and to count silent channels.
        """
        if self._stream is not None:
            return channels_last(next(self._stream).to(self.device))
        gen = torch.Generator().manual_seed(data.derive_seed(self.config.seed, "probe", salt))
        saved, world, rank = self.generator, self.world_size, self.rank
        self.generator, self.world_size, self.rank = gen, 1, 0
        try:
            return self.sample_patches(n)
        finally:
            self.generator, self.world_size, self.rank = saved, world, rank

    def _stage_input(self, patches: torch.Tensor, stage: int) -> torch.Tensor:
        with torch.no_grad():
            x = patches
            for s in self.model.stages[:stage - 1]:
                x = s(x)
        return x

    def center_inputs(self, stages: tuple[int, ...] = (1, 2)) -> V1V2:
        """Estimate ``input_mean`` of each of ``stages`` that centres its input, with the current weights of the
        stages before it; return the model.

        Training does this for the trained stages when a phase starts; call it to prepare an untrained control
        (the same data-driven centring, no learning).
        """
        for i in stages:
            stage = self.model.stages[i - 1]
            if stage.config.center_input:
                mean = stage.set_input_mean(self._stage_input(self.probe_patches(salt=i), i))
                if self.world_size > 1:  # streaming: each process saw its own shard
                    torch.distributed.all_reduce(mean)
                    mean /= self.world_size
        return self.model

    def silent_fractions(self) -> dict[str, float]:
        """Fraction of silent channels (:meth:`lcl.Stage.silent_channels`) of each stage on 256 probe patches."""
        patches = self.probe_patches(salt=99)
        return {f"stage{i}": float(self.model.stages[i - 1].silent_channels(self._stage_input(patches, i))
                                   .float().mean()) for i in (1, 2)}

    def _start_phase(self) -> None:
        phase = self.phase
        stages = self.model.stages
        if self.step == 0:
            self.center_inputs(phase.trained)
        self.model.zero_grad(set_to_none=True)  # no stale gradient from the previous phase
        for i, stage in enumerate(stages, start=1):
            learn = i in phase.trained
            stage.requires_grad_(learn)
            stage.train(learn)
        for i, stage in enumerate(stages, start=1):
            if i > phase.stage:
                stage.eval()
        params = [p for i in phase.trained for p in stages[i - 1].parameters()]
        oc = self.config.optim
        self._peak_lr = oc.scaled_lr(self.config.train.batch_size * self.world_size)
        self.optimizer = torch.optim.AdamW(params, lr=self._peak_lr, betas=tuple(oc.betas),
                                           weight_decay=oc.weight_decay)
        # views -> the loss's feature map (compiled, DDP-wrapped as configured)
        self._ddp = data.wrap_ddp(_PhaseForward(self.model, phase), self.device, compile=self.config.train.compile)

    # ----------------------------------------------------------------------------------------------- steps
    def sample_patches(self, n: int) -> torch.Tensor:
        """``n`` random patches (n, channel, patch, patch) for this process, drawn with the run's generator.

        In memory, ``n * world_size`` positions are drawn (identically in every process) and this process keeps
        its slice; streaming, the patches come from this process's shard of the folder.
        """
        if self._stream is not None:
            return channels_last(next(self._stream).to(self.device, non_blocking=True))
        imgs = self._images
        p = self.config.train.patch_size
        num, _, h, w = imgs.shape
        g = self.generator
        total, lo = n * self.world_size, n * self.rank
        idx = torch.randint(0, num, (total,), generator=g)[lo:lo + n]
        y0 = torch.randint(0, h - p + 1, (total,), generator=g)[lo:lo + n]
        x0 = torch.randint(0, w - p + 1, (total,), generator=g)[lo:lo + n]
        ar = torch.arange(p)
        rows = (y0[:, None] + ar[None, :])[:, :, None]
        cols = (x0[:, None] + ar[None, :])[:, None, :]
        dev = imgs.device
        out = imgs.permute(0, 2, 3, 1)[idx[:, None, None].to(dev), rows.to(dev), cols.to(dev)]
        return channels_last(out.permute(0, 3, 1, 2))

    def make_views(self, patches: torch.Tensor) -> torch.Tensor:
        """Two deformed views of each patch, stacked as (2n, channel, y, x): views 1 then views 2."""
        amp, smooth = self.config.deform.pixels(self.rf_sizes, self.phase.stage)
        both = torch.cat([patches, patches])
        if amp == 0:
            return channels_last(both.clone())
        b, _, h, w = patches.shape
        shape = (2, _coarse(h, smooth), _coarse(w, smooth))  # noise_shape(h, w, smooth), unchecked
        # noise for the global batch (views 1 of all patches, then views 2), this process's slice
        noise = torch.randn(2, b * self.world_size, *shape, generator=self.generator)
        noise = noise[:, b * self.rank:b * (self.rank + 1)].reshape(2 * b, *shape)
        d = _displacement_from_noise(noise, h, w, amp, smooth, device=both.device, dtype=both.dtype)
        return channels_last(_warp(both, d, padding=self.config.deform.padding))

    def compute_loss(self, views: torch.Tensor) -> torch.Tensor:
        """Loss of the current phase for stacked views (see :meth:`make_views`)."""
        tc = self.config.train
        with data.autocast(self.device, tc.precision):
            y = self._ddp(views)
        z = losses.pool_features(y.float(), tc.pool_grid)
        n = views.shape[0] // 2
        z1, z2 = z[:, :n], z[:, n:]
        if self.world_size > 1:
            # the loss sees the global batch (negatives from every process); the autograd all_gather sends each
            # process the gradient of its own features, and DDP's averaging then yields the exact global gradient
            z1, z2 = _GatherBatch.apply(z1), _GatherBatch.apply(z2)
        return self.loss_fn(z1, z2, **self.loss_options)

    def _ddp_input(self) -> torch.Tensor:
        """The input of the phase's stage in the last step (the views after the earlier stages)."""
        module = self._ddp
        for attr in ("module", "_orig_mod"):  # DDP, then torch.compile wrappers
            module = getattr(module, attr, module)
        return module.last_input

    def train_step(self) -> float:
        """One optimisation step of the current phase; returns the loss."""
        if self.optimizer is None:
            self._start_phase()
        patches = self.sample_patches(self.config.train.batch_size)
        views = self.make_views(patches)
        loss = self.compute_loss(views)
        oc = self.config.optim
        self._last_lr = self._peak_lr * data.lr_factor(self.step, self.phase.steps, warmup_steps=oc.warmup_steps,
                                                       min_lr_ratio=oc.min_lr_ratio)
        data.optimizer_step(self.optimizer, loss, lr=self._last_lr, grad_clip=oc.grad_clip)
        self.step += 1
        return float(loss.detach())  # the same global loss in every process

    def run(self, until: int | None = None) -> V1V2:
        """Train to the end (or stop without saving once ``global_step == until``, to simulate a crash).

        Returns
        -------
        V1V2
            The model (also written to ``out_dir/model.pt`` at the end).
        """
        tc = self.config.train
        bar = data.progress_bar(self.total_steps, initial=self.global_step, desc="lcl", enabled=tc.progress)
        try:
            while self.phase_index < len(self.phases):
                phase = self.phase
                if self.optimizer is None:
                    self._start_phase()
                t0 = time.perf_counter()
                while self.step < phase.steps:
                    if until is not None and self.global_step >= until:
                        return self.model
                    loss = self.train_step()
                    if not math.isfinite(loss):
                        raise FloatingPointError(f"loss became {loss} at {phase.name} step {self.step}")
                    bar.update(1)
                    bar.set_postfix(phase=phase.name, loss=f"{loss:.4f}")
                    if self.step % tc.log_every == 0 or self.step == phase.steps:
                        now = time.perf_counter()
                        self._wall += now - t0
                        t0 = now
                        silent = self.model.stages[phase.stage - 1].silent_channels(self._ddp_input())
                        self.log.append({
                            "phase": phase.name, "stage": phase.stage, "step": self.step,
                            "global_step": self.global_step, "loss": loss,
                            "silent_fraction": round(float(silent.float().mean()), 4),
                            "lr": self._last_lr, "wall_s": round(self._wall, 3),
                            "patches": self.global_step * tc.batch_size * self.world_size,
                        })
                        self._write_log()
                    if self.step % tc.checkpoint_every == 0 and self.step < phase.steps:
                        self.save_checkpoint()
                self.phase_index += 1
                self.step = 0
                self.optimizer = self._ddp = None
                for stage in self.model.stages:
                    stage.requires_grad_(False)
                self.silent = self.silent_fractions()
                self.save_checkpoint()
        finally:
            bar.close()
        self.model.eval()
        self._save_model()
        return self.model

    def _save_model(self) -> None:
        if self.out_dir is None or self.rank != 0:
            return
        cfg = self.config.to_dict()
        payload = {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()}, "config": cfg,
                   "provenance": data.provenance(cfg, self.config.seed), "silent_fraction": dict(self.silent)}
        with data.atomic_write(self.out_dir / MODEL_FILE) as tmp:
            torch.save(payload, tmp)


def train(config: LCLConfig, out_dir: str | os.PathLike | None = None, *, resume: bool = False) -> V1V2:
    """Train an LCL model (see :class:`Trainer`) and return it in eval mode.

    Parameters
    ----------
    config
        The run (e.g. ``lcl.LCLConfig.preset("demo")`` or ``lcl.LCLConfig.load(path)``).
    out_dir
        Folder for ``checkpoint.pt``, ``log.jsonl`` and ``model.pt``.
    resume
        Continue from ``out_dir/checkpoint.pt``.

    Returns
    -------
    V1V2

    Raises
    ------
    TypeError
        For an ``out_dir`` that is not a path or ``None``, a ``resume`` that is not ``True``/``False``.
    ValueError
        For an invalid ``config``, ``resume=True`` without ``out_dir`` or with a checkpoint of another config.
    FileNotFoundError
        For ``resume=True`` when ``out_dir`` holds no checkpoint.

    Examples
    --------
    >>> import lcl, tempfile
    >>> cfg = lcl.LCLConfig.preset("demo", train={"steps": (2, 1), "batch_size": 4, "progress": False},
    ...                                    model={"stage1": {"channels": 4}, "stage2": {"channels": 4}})
    >>> model = lcl.train(cfg, tempfile.mkdtemp())
    >>> model.stage1.conv.weight.requires_grad
    False
    """
    return Trainer(config, out_dir, resume=resume).run()


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``checkpoint.pt`` or ``model.pt`` (a folder means its ``model.pt``, else ``checkpoint.pt``).

    Raises
    ------
    TypeError
        For a ``path`` that is not a str or ``os.PathLike``.
    FileNotFoundError
        For a ``path`` that names no file or a folder without either file.
    ValueError
        For a file that is not an LCL checkpoint (not a torch file, or without ``config`` and ``model``).

    Examples
    --------
    >>> import lcl, tempfile
    >>> out = tempfile.mkdtemp()
    >>> cfg = lcl.LCLConfig.preset("demo", train={"steps": (1, 1), "batch_size": 4, "progress": False},
    ...                                    model={"stage1": {"channels": 4}, "stage2": {"channels": 4}})
    >>> _ = lcl.train(cfg, out)
    >>> sorted(lcl.load_checkpoint(out))
    ['config', 'model', 'provenance', 'silent_fraction']
    """
    path = check_path("path", path)
    if path.is_dir():
        path = path / MODEL_FILE if (path / MODEL_FILE).is_file() else path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no LCL checkpoint at {path}")
    try:
        return data.load_checkpoint(path)
    except ValueError as exc:
        raise ValueError(f"path {str(path)!r} is not an LCL checkpoint: {exc}") from None


def load_model(path: str | os.PathLike) -> V1V2:
    """Rebuild the trained :class:`lcl.V1V2` (eval mode, frozen) from ``model.pt``, a checkpoint or a run folder.

    Raises
    ------
    TypeError
        For a ``path`` that is not a str or ``os.PathLike``.
    FileNotFoundError
        For a ``path`` that names no file or a folder without ``model.pt`` or ``checkpoint.pt``.
    ValueError
        For a file that is not an LCL checkpoint.

    Examples
    --------
    >>> import lcl, tempfile, torch
    >>> out = tempfile.mkdtemp()
    >>> cfg = lcl.LCLConfig.preset("demo", train={"steps": (1, 1), "batch_size": 4, "progress": False},
    ...                                    model={"stage1": {"channels": 4}, "stage2": {"channels": 4}})
    >>> trained = lcl.train(cfg, out)
    >>> bool(torch.equal(lcl.load_model(out).stage2.conv.weight, trained.stage2.conv.weight))
    True
    """
    state = load_checkpoint(path)
    config = LCLConfig.from_dict(state["config"])
    model = V1V2(config.model)
    model.load_state_dict(state["model"])
    model.config = config.model
    model.lcl_config = config  # type: ignore[attr-defined]
    model.requires_grad_(False)
    return model.eval()

