"""The line every benchmark prints first: what ran it and how busy the machine was (timings depend on both)."""

from __future__ import annotations

import os


def machine_line() -> str:
    """``torch VERSION, T thread(s), C CPUs, load average L`` for the current process.

    Examples
    --------
    >>> machine_line().startswith("torch ")
    True
    """
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs, "
            f"load average {load:.1f}")
