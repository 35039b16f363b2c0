"""Shared test setup: deterministic, single-threaded torch so timings and results do not depend on load."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config):
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
