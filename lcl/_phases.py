"""The phases of an LCL run (stage 1 then stage 2, or end to end) and the modules one step of a phase runs: the
forward pass through frozen and trained stages and the all-gather of the loss's features across processes."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import torch

from ._config import LCLConfig
from ._model import V1V2

__all__: list[str] = []

# DDP warns once that channels-last weight gradients are copied into its (contiguous) buckets: harmless here.
warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory format, which makes the convolutions markedly faster (oneDNN, cuDNN).

    With a single channel ``contiguous(memory_format=channels_last)`` is a no-op that keeps NCHW strides, and
    PyTorch then picks the NCHW kernels; the strides are set explicitly instead (same memory, no copy).
    """
    if x.shape[1] == 1:
        x = x.contiguous()
        return x.as_strided(x.shape, (x.stride(0), 1, x.stride(2), x.stride(3)))
    return x.contiguous(memory_format=torch.channels_last)


class Phase(NamedTuple):
    """One training phase: which stage's output the loss sees, how many steps, which stages learn."""

    name: str
    stage: int
    steps: int
    trained: tuple[int, ...]


def _phases(config: LCLConfig) -> list[Phase]:
    s1, s2 = config.train.steps
    if config.train.mode == "layerwise":
        return [Phase("stage1", 1, s1, (1,)), Phase("stage2", 2, s2, (2,))]
    return [Phase("end_to_end", 2, s1 + s2, (1, 2))]


class _GatherBatch(torch.autograd.Function):
    """All-gather (cells, batch, dim) features along the batch from every process, in rank order, with autograd.

    Backward sums the gradients that every process computed for the gathered tensor (all processes evaluate the
    same global loss) and returns this process's slice.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        dist = torch.distributed
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        ctx.rank, ctx.n = dist.get_rank(), x.shape[1]
        return torch.cat(parts, dim=1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        torch.distributed.all_reduce(grad)
        return grad[:, ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n].contiguous()


class _PhaseForward(torch.nn.Module):
    """Views -> feature map of the phase's stage; frozen earlier stages run under ``no_grad``."""

    def __init__(self, model: V1V2, phase: Phase):
        super().__init__()
        self.model = model
        self.stage = phase.stage
        self.trained = phase.trained

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, stage in enumerate(self.model.stages[:self.stage], start=1):
            if i == self.stage:
                self.last_input = x.detach()  # for counting silent channels at log steps
            if i in self.trained:
                x = stage(x)
            else:
                with torch.no_grad():
                    x = stage(x)
        return x
