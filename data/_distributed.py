"""torch.distributed helpers shared by the trainers (``lcl``, ``decoding``): join the ``torchrun`` process group,
this process's rank and device, the learning-rate scaling rule for a global batch, and the DDP wrapping of the
module a training step calls."""

from __future__ import annotations

import math
import os
from typing import Any

from ._checks import check_bool, check_choice, check_device, check_float, check_int

__all__ = ["init_distributed", "rank_and_world", "process_device", "validate_device", "scaled_lr", "wrap_ddp",
           "LR_SCALINGS"]

#: Learning-rate scaling rules of :func:`scaled_lr`.
LR_SCALINGS = ("none", "linear", "sqrt")


def init_distributed(device: str = "cpu") -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes in the environment; return (rank, world size).

    Does nothing (returns ``(0, 1)``) outside ``torchrun`` (no ``WORLD_SIZE`` > 1 in the environment) and returns
    the existing group's values when one is already initialised. Uses NCCL for CUDA devices (and pins each process
    to GPU ``LOCAL_RANK``), gloo otherwise.

    Parameters
    ----------
    device
        The device the trainer will use (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...): picks the backend.

    Returns
    -------
    tuple of int
        ``(rank, world_size)``.

    Examples
    --------
    >>> import data
    >>> data.init_distributed("cpu")  # not under torchrun
    (0, 1)
    """
    import torch

    check_device("device", device)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return rank_and_world()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not torch.distributed.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return rank_and_world()


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the initialised torch.distributed process group, else ``(0, 1)``.

    Examples
    --------
    >>> import data
    >>> data.rank_and_world()  # no process group
    (0, 1)
    """
    import torch

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def process_device(device: Any) -> Any:
    """The ``torch.device`` this process trains on: plain ``"cuda"`` in a distributed run means GPU ``LOCAL_RANK``.

    Parameters
    ----------
    device
        A device name or ``torch.device``; anything but plain ``"cuda"`` under ``torchrun`` is kept as it is.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> import data
    >>> data.process_device("cpu")
    device(type='cpu')
    """
    import torch

    dev = check_device("device", device)
    if dev.type == "cuda" and dev.index is None and rank_and_world()[1] > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return dev


def scaled_lr(lr: float, global_batch: int, rule: str = "none", reference_batch: int = 256) -> float:
    """Peak learning rate for ``global_batch`` samples per step under a scaling rule.

    Parameters
    ----------
    lr
        The learning rate as configured.
    global_batch
        Samples per optimisation step over all processes.
    rule
        ``"none"`` (``lr`` as given), ``"linear"`` (``lr * global_batch / reference_batch``) or ``"sqrt"``
        (``lr * sqrt(global_batch / reference_batch)``, often better for Adam-type optimisers).
    reference_batch
        The global batch at which ``lr`` was tuned.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        For a non-numeric ``lr``, non-integer batches or a non-string ``rule``.
    ValueError
        For an unknown rule, non-positive batches, or an ``lr`` that is not a positive finite number.

    Examples
    --------
    >>> import data
    >>> data.scaled_lr(1e-3, 512, "linear", reference_batch=128)
    0.004
    >>> data.scaled_lr(1e-3, 256, "sqrt", reference_batch=64)
    0.002
    """
    lr = check_float("lr", lr, low=0.0, low_open=True)
    global_batch = check_int("global_batch", global_batch, low=1)
    rule = check_choice("rule", rule, LR_SCALINGS)
    reference_batch = check_int("reference_batch", reference_batch, low=1)
    ratio = global_batch / reference_batch
    return lr * {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[rule]


def wrap_ddp(module: Any, device: Any, *, compile: bool = False) -> Any:
    """The module a training step calls: ``module`` compiled (``torch.compile``) if asked, then wrapped in
    ``DistributedDataParallel`` when a process group of more than one process is initialised.

    Build it after every process has read its checkpoint (the DDP constructor is collective).

    Parameters
    ----------
    module
        The ``torch.nn.Module`` whose parameters train (already on ``device``).
    device
        This process's device (:func:`data.process_device`); a CUDA device becomes DDP's ``device_ids``.
    compile
        Compile the forward pass (needs a C++ compiler on a CPU, Triton on a GPU).

    Returns
    -------
    torch.nn.Module
        ``module`` itself in a single process without compilation.

    Raises
    ------
    TypeError
        For a ``module`` that is not a ``torch.nn.Module`` or a non-bool ``compile``.

    Examples
    --------
    >>> import torch, data
    >>> net = torch.nn.Linear(2, 2)
    >>> data.wrap_ddp(net, "cpu") is net  # one process
    True
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    device = check_device("device", device)
    compile = check_bool("compile", compile)
    if compile:
        module = torch.compile(module)
    if rank_and_world()[1] > 1:
        from torch.nn.parallel import DistributedDataParallel

        module = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    return module


def validate_device(device: Any, name: str = "device") -> Any:
    """``device`` as a ``torch.device``, checked to exist on this machine (entry points call it before any work).

    Parameters
    ----------
    device
        A device name (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``) or a ``torch.device``.
    name
        How error messages name the setting (e.g. ``"train.device"``, ``"--device"``).

    Returns
    -------
    torch.device

    Raises
    ------
    TypeError
        If ``device`` is neither a string nor a ``torch.device``.
    ValueError
        Naming ``name``: not a torch device, an unsupported type, CUDA or MPS not available, or a CUDA index this
        machine does not have.

    Examples
    --------
    >>> import data
    >>> data.validate_device("cpu")
    device(type='cpu')
    >>> data.validate_device("gpu", "train.device")
    Traceback (most recent call last):
    ...
    ValueError: train.device 'gpu' is not a torch device; use cpu, cuda, cuda:N or mps
    """
    import torch

    if not isinstance(name, str):
        raise TypeError(f"name must be a string naming the setting, got {type(name).__name__}")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name} must be a device name such as 'cpu' or 'cuda', got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{name} {device!r} is not a torch device; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {device!r} requested but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{name} {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{name} {device!r} requested but MPS is not available on this machine")
    elif dev.type != "cpu":
        raise ValueError(f"{name} {device!r} is not supported; use cpu, cuda, cuda:N or mps")
    return dev
