"""The training core that the three trainers share (``lcl.Trainer``, ``decoding.train_enhancer``,
``lcl.train_v2net``): the learning-rate schedule, one optimisation step (gradient clipping included), the
mixed-precision context, the progress bar, and one checkpoint format with one set of resume checks (DDP wrapping,
:func:`data.wrap_ddp`, is with the other ``torch.distributed`` helpers in ``data._distributed``).

Each trainer keeps what is specific to its model (data, loss, phases, what else it stores).

Checkpoint format (:data:`CHECKPOINT_FORMAT`), a ``dict`` written by ``torch.save`` through an atomic rename and
read with ``weights_only=True``: ``format``, ``model`` (state dict on the CPU), ``optimizer`` (state dict or
``None``), ``step``, ``rng`` (``torch``, ``cuda`` when present, ``generators``: the named ``torch.Generator``
states), ``config`` (a plain dict), ``world_size``, ``provenance`` (:func:`data.provenance`: package version,
git commit, time, config, seed) and the trainer's own entries next to them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ._checks import check_bool, check_choice, check_device, check_float, check_int, check_path, check_seed, check_str
from ._distributed import rank_and_world
from ._io import atomic_write, provenance

__all__ = ["lr_factor", "optimizer_step", "autocast", "progress_bar", "save_checkpoint", "load_checkpoint",
           "resume_state", "SCHEDULES", "PRECISIONS", "CHECKPOINT_FORMAT"]

#: Shapes of the learning-rate schedule after the warm-up (see :func:`lr_factor`).
SCHEDULES = ("cosine", "constant")
#: Precisions of the forward pass (see :func:`autocast`).
PRECISIONS = ("float32", "bfloat16")
#: The ``format`` entry of every training checkpoint.
CHECKPOINT_FORMAT = "lcl-workbench-checkpoint/1"
_CORE_KEYS = ("format", "model", "optimizer", "step", "rng", "config", "world_size", "provenance")


def lr_factor(step: int, total: int, *, warmup_steps: int = 0, schedule: str = "cosine",
              min_lr_ratio: float = 0.0) -> float:
    """The factor of the peak learning rate at optimisation step ``step`` (0-based) of ``total``.

    A linear warm-up, ``(step + 1) / warmup_steps`` for the first ``warmup_steps`` steps, then ``"constant"`` 1
    or a ``"cosine"`` decay from 1 to ``min_lr_ratio`` over the remaining ``total - warmup_steps`` steps (held at
    ``min_lr_ratio`` after ``total``). A pure function of its arguments: a resumed run needs only the step.

    Parameters
    ----------
    step
        The step about to be taken (0 for the first).
    total
        Steps of the run (or of the phase) the schedule spans.
    warmup_steps
        Length of the linear warm-up (0: none).
    schedule
        ``"cosine"`` or ``"constant"`` (see :data:`SCHEDULES`).
    min_lr_ratio
        Where the cosine ends, as a fraction of the peak, in [0, 1].

    Returns
    -------
    float
        In ``[min_lr_ratio, 1]``; multiply the peak learning rate by it.

    Raises
    ------
    TypeError, ValueError
        Naming the argument: negative or non-integer steps, an unknown ``schedule``, ``min_lr_ratio`` not in [0, 1].

    Examples
    --------
    >>> import data
    >>> [data.lr_factor(s, 6, warmup_steps=2) for s in range(6)]
    [0.5, 1.0, 1.0, 0.8535533905932737, 0.5, 0.14644660940672627]
    >>> data.lr_factor(5, 6, warmup_steps=2, schedule="constant")
    1.0
    """
    step = check_int("step", step, low=0)
    total = check_int("total", total, low=0)
    warmup_steps = check_int("warmup_steps", warmup_steps, low=0)
    schedule = check_choice("schedule", schedule, SCHEDULES)
    min_lr_ratio = check_float("min_lr_ratio", min_lr_ratio, low=0.0, high=1.0)
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    t = min(1.0, (step - warmup_steps) / max(1, total - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def optimizer_step(optimizer: Any, loss: Any, *, lr: float, grad_clip: float = 0.0) -> None:
    """One optimisation step: set every group's learning rate to ``lr``, back-propagate ``loss`` from zeroed
    gradients, clip their global norm to ``grad_clip`` (0: no clipping) and step the optimizer.

    Parameters
    ----------
    optimizer
        A ``torch.optim.Optimizer``.
    loss
        The scalar loss tensor of this step (under DDP: this process's part; the backward pass averages).
    lr
        The learning rate of this step, e.g. ``peak * lr_factor(step, total)``.
    grad_clip
        Largest global L2 norm of the gradients of the optimizer's parameters (0: off).

    Raises
    ------
    TypeError, ValueError
        Naming the argument, before the backward pass: not an optimizer, not a scalar tensor, a bad number.

    Examples
    --------
    >>> import torch, data
    >>> w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    >>> opt = torch.optim.SGD([w], lr=0.0)
    >>> data.optimizer_step(opt, (w ** 2).sum() / 2, lr=0.1, grad_clip=1.0)  # gradient (3, 4) clipped to norm 1
    >>> w.detach().tolist()
    [2.940000057220459, 3.9200000762939453]
    """
    import torch

    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(f"loss must be a scalar torch.Tensor, got {type(loss).__name__}")
    lr = check_float("lr", lr, low=0.0)
    grad_clip = check_float("grad_clip", grad_clip, low=0.0)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
    optimizer.step()


def autocast(device: Any, precision: str = "float32") -> Any:
    """The context for a training forward pass in ``precision``: ``torch.autocast`` to bfloat16, or nothing.

    Wrap only the network's forward pass; compute the loss on ``output.float()`` outside it.

    Parameters
    ----------
    device
        The ``torch.device`` (or its name) the forward pass runs on.
    precision
        ``"float32"`` or ``"bfloat16"`` (see :data:`PRECISIONS`).

    Returns
    -------
    context manager

    Raises
    ------
    TypeError, ValueError
        Naming the argument, for an unknown precision or device.

    Examples
    --------
    >>> import torch, data
    >>> with data.autocast("cpu", "bfloat16"):
    ...     y = torch.nn.Linear(2, 2)(torch.ones(1, 2))
    >>> y.dtype
    torch.bfloat16
    """
    import torch

    device = check_device("device", device)
    precision = check_choice("precision", precision, PRECISIONS)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def progress_bar(total: int, *, initial: int = 0, desc: str = "train", enabled: bool = True) -> Any:
    """A ``tqdm`` bar over optimisation steps, shown by rank 0 only (and only if ``enabled``).

    Parameters
    ----------
    total
        Steps of the run.
    initial
        Steps already taken (a resumed run).
    desc
        Label.
    enabled
        Show it at all.

    Returns
    -------
    tqdm.tqdm
        Call ``update(1)`` per step and ``close()`` at the end.

    Examples
    --------
    >>> import data
    >>> bar = data.progress_bar(10, initial=4, enabled=False)
    >>> bar.n, bar.total
    (4, 10)
    >>> bar.close()
    """
    from tqdm.auto import tqdm

    total = check_int("total", total, low=0)
    initial = check_int("initial", initial, low=0)
    desc = check_str("desc", desc)
    enabled = check_bool("enabled", enabled)
    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                disable=not enabled or rank_and_world()[0] != 0)


def _check_state_objects(model: Any, optimizer: Any, generators: Any) -> dict[str, Any]:
    """Type checks of what a checkpoint is written from or loaded into; returns the generators as a dict."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    generators = {} if generators is None else generators
    if not isinstance(generators, Mapping) or not all(
            isinstance(k, str) and isinstance(g, torch.Generator) for k, g in generators.items()):
        raise TypeError("generators must be a mapping of names to torch.Generator objects (or None), got "
                        f"{type(generators).__name__}")
    return dict(generators)


def save_checkpoint(path: str | os.PathLike, *, model: Any, optimizer: Any, step: int, config: Mapping[str, Any],
                    seed: int, generators: Mapping[str, Any] | None = None, **extra: Any) -> Path | None:
    """Write a training checkpoint (the format of :data:`CHECKPOINT_FORMAT`) atomically; rank 0 only.

    Parameters
    ----------
    path
        The file (``.pt``); written through a temporary file and a rename, so a crash leaves the previous one.
    model
        The network (its ``state_dict`` is stored on the CPU; pass the unwrapped module, not DDP's).
    optimizer
        Its optimizer, or ``None`` (e.g. between two phases).
    step
        Optimisation steps taken (of the run, or of the phase the trainer stores next to it).
    config
        The run's config as a plain dict (what :func:`load_checkpoint` compares on resume).
    seed
        The run's root seed (for the provenance).
    generators
        Named ``torch.Generator`` objects whose states resume needs (the global torch and CUDA RNG states are
        always stored).
    **extra
        The trainer's own entries (weights-only picklable: tensors, numbers, strings, lists, dicts); they must
        not reuse a core name.

    Returns
    -------
    pathlib.Path or None
        ``path``; ``None`` in a process other than rank 0, which writes nothing.

    Raises
    ------
    TypeError, ValueError
        Naming the argument, before writing: wrong types, a negative ``step``, an ``extra`` entry with a core name.

    Examples
    --------
    >>> import torch, data, tempfile, pathlib
    >>> net = torch.nn.Linear(2, 1)
    >>> p = data.save_checkpoint(pathlib.Path(tempfile.mkdtemp()) / "c.pt", model=net, optimizer=None, step=3,
    ...                          config={"lr": 0.1}, seed=0, history=[0.5])
    >>> state = data.load_checkpoint(p)
    >>> state["step"], state["history"], state["format"]
    (3, [0.5], 'lcl-workbench-checkpoint/1')
    """
    import torch

    path = check_path("path", path)
    generators = _check_state_objects(model, optimizer, generators)
    step = check_int("step", step, low=0)
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    seed = check_seed("seed", seed)
    clash = sorted(set(extra) & set(_CORE_KEYS))
    if clash:
        raise ValueError(f"extra entries {clash} reuse core checkpoint names {_CORE_KEYS}")
    rank, world = rank_and_world()
    if rank != 0:
        return None
    config = dict(config)
    rng = {"torch": torch.get_rng_state(), "generators": {k: g.get_state() for k, g in generators.items()}}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    state = {"format": CHECKPOINT_FORMAT, "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
             "optimizer": None if optimizer is None else optimizer.state_dict(), "step": step, "rng": rng,
             "config": config, "world_size": world, "provenance": provenance(config, seed), **extra}
    with atomic_write(path) as tmp:
        torch.save(state, tmp)
    return path


def _flat(d: Mapping[str, Any], runtime: list[str], prefix: str = "") -> dict[str, Any]:
    """Dotted name -> value of a nested config dict (tuples as lists, as TOML reads them), without the fields
    named in (or below) ``runtime``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if name in runtime:
            continue
        if isinstance(v, Mapping) and v:
            out.update(_flat(v, runtime, f"{name}."))
        else:
            out[name] = list(v) if isinstance(v, tuple) else v
    return out


def load_checkpoint(path: str | os.PathLike, *, config: Mapping[str, Any] | None = None,
                    runtime: Iterable[str] = (), map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint (``torch.load(weights_only=True)``); with ``config``, check that a run may resume it.

    Without ``config`` any dict with ``model`` and ``config`` entries is accepted (final model files too). With
    ``config`` (resuming) the file must be a training checkpoint (:data:`CHECKPOINT_FORMAT`), its config must
    equal ``config`` in every field but the ``runtime`` ones, and it must have been written by as many processes
    as this run has (the global batch is the per-process batch times the processes).

    Parameters
    ----------
    path
        The file.
    config
        The resuming run's config as a plain dict (``None``: just read).
    runtime
        Dotted field names (``"train.device"``) that may differ without changing the result.
    map_location
        The device the tensors go to.

    Returns
    -------
    dict

    Raises
    ------
    TypeError
        Naming the argument, for a non-path ``path``, a ``config`` that is not a dict, ``runtime`` names that
        are not strings, a ``map_location`` that is not a device.
    FileNotFoundError
        If ``path`` names no file.
    ValueError
        Naming ``path``: not a readable torch file (truncated, say), not a checkpoint, an older format, a config
        that differs (naming the fields), another number of processes.

    Examples
    --------
    >>> import torch, data, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.pt"
    >>> _ = data.save_checkpoint(p, model=torch.nn.Linear(2, 1), optimizer=None, step=1,
    ...                          config={"train": {"lr": 0.1, "device": "cpu"}}, seed=0)
    >>> data.load_checkpoint(p, config={"train": {"lr": 0.1, "device": "cuda"}}, runtime=["train.device"])["step"]
    1
    >>> data.load_checkpoint(p, config={"train": {"lr": 0.2, "device": "cpu"}})
    Traceback (most recent call last):
    ...
    ValueError: checkpoint ... other settings: the config differs in ['train.lr'] (0.1 there, 0.2 here); ...
    """
    import torch

    path = check_path("path", path)
    if config is not None and not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    if isinstance(runtime, (str, bytes)) or not isinstance(runtime, Iterable) or \
            not all(isinstance(r, str) for r in runtime):
        raise TypeError(f"runtime must be an iterable of dotted field names, got {type(runtime).__name__}")
    runtime = sorted(runtime)
    map_location = check_device("map_location", map_location)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch errors of a truncated or foreign file
        raise ValueError(f"cannot read the checkpoint {path} (truncated or not a torch file?): "
                         f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
    if not isinstance(state, dict) or not {"model", "config"} <= set(state):
        raise ValueError(f"{path} is not a checkpoint (it needs 'model' and 'config' entries)")
    if config is None:
        return state
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path} has format {state.get('format', 'unversioned')!r}, not "
                         f"{CHECKPOINT_FORMAT!r}; it cannot be resumed by this version (start a new run)")
    there, here = _flat(state["config"], runtime), _flat(config, runtime)
    diff = sorted(k for k in set(there) | set(here) if there.get(k, "?") != here.get(k, "?"))
    if diff:
        detail = "" if len(diff) > 1 else f" ({there.get(diff[0], '<missing>')!r} there, " \
                                          f"{here.get(diff[0], '<missing>')!r} here)"
        raise ValueError(f"checkpoint {path} was written with other settings: the config differs in {diff[:10]}"
                         f"{detail}; resume with the same config (runtime fields that may change: "
                         f"{', '.join(runtime) or 'none'})")
    world = rank_and_world()[1]
    if state["world_size"] != world:
        raise ValueError(f"checkpoint {path} was written by {state['world_size']} processes, this run has "
                         f"{world}; resume with the same number of processes (the global batch is batch_size x "
                         "processes)")
    return state


def resume_state(state: Mapping[str, Any], *, model: Any, optimizer: Any = None,
                 generators: Mapping[str, Any] | None = None) -> int:
    """Load a checkpoint's weights, optimizer state and RNG states (global torch, CUDA, named generators);
    return its ``step``.

    Parameters
    ----------
    state
        What :func:`load_checkpoint` returned (with ``config``, so in the training format).
    model
        The network to load the weights into (the unwrapped module).
    optimizer
        Its optimizer (``None``: leave the stored optimizer state for the caller).
    generators
        The run's named ``torch.Generator`` objects, as passed to :func:`save_checkpoint`.

    Returns
    -------
    int
        The stored ``step``.

    Raises
    ------
    TypeError
        Naming the argument, for wrong types.
    ValueError
        For a ``state`` not in the training format, weights that do not fit ``model``, missing generator states.

    Examples
    --------
    >>> import torch, data, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.pt"
    >>> g = torch.Generator().manual_seed(1)
    >>> _ = data.save_checkpoint(p, model=torch.nn.Linear(2, 1), optimizer=None, step=5, config={}, seed=1,
    ...                          generators={"data": g})
    >>> first = torch.rand(1, generator=g)
    >>> data.resume_state(data.load_checkpoint(p, config={}), model=torch.nn.Linear(2, 1), generators={"data": g})
    5
    >>> bool(torch.equal(torch.rand(1, generator=g), first))
    True
    """
    import torch

    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a checkpoint dict, got {type(state).__name__}")
    generators = _check_state_objects(model, optimizer, generators)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"state is not a training checkpoint (format {state.get('format', 'unversioned')!r})")
    missing = sorted(set(generators) - set(state["rng"]["generators"]))
    if missing:
        raise ValueError(f"the checkpoint holds no state of the generator(s) {missing}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ValueError(f"the checkpoint's weights do not fit the model: {' '.join(str(exc).split())[:300]}"
                         ) from None
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    for name, g in generators.items():
        g.set_state(rng["generators"][name])
    return int(state["step"])
