"""Torch CPU thread settings for the many small kernels of the geometry solvers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__: list[str] = []


@contextlib.contextmanager
def single_thread(enabled: bool) -> Iterator[None]:
    """Run torch on one intra-op thread inside the block (restored afterwards).

    Tiny linear algebra and chains of small kernels lose to thread synchronisation: on busy machines a
    multi-threaded LAPACK call on a 10 x 3 matrix spent milliseconds in barriers (measured 7 ms per QR with 2
    threads vs 5 us with 1). Callers that want parallelism run independent work in Python threads instead.
    """
    if not enabled:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def single_thread_blas(enabled: bool) -> Iterator[None]:
    """numpy's BLAS on one thread inside the block (the CPU center search and centering run numpy's BLAS).

    OpenBLAS splits a matrix-vector product of 100 x 100 across threads; on these tiny kernels that is the
    barrier cost :func:`single_thread` avoids for torch. Without threadpoolctl (a scikit-learn dependency) the
    BLAS keeps its own setting.
    """
    if not enabled:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
