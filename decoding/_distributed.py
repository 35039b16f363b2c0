"""What the enhancer needs beyond DDP to make N processes equal one: batch norm over the global batch (CPU and GPU;
``torch.nn.SyncBatchNorm`` is GPU-only) and a check that every process holds the same training pairs."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes with autograd: every process's loss depends on the sum, so the gradient of each
    process's input is the sum of all processes' gradients of the output."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        torch.distributed.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        torch.distributed.all_reduce(grad)
        return grad


@torch.compiler.disable  # a graph break under torch.compile: the collective runs eagerly
def _all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(x)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of the batch over all processes.

    Two all-reduces per call: the per-channel sums and counts, then the sums of squared deviations from the global
    mean (two passes, as stable as a single-process batch norm). Running statistics are updated exactly as
    ``BatchNorm2d`` does with the global batch, so they stay identical in every process. In evaluation mode it is
    a plain ``BatchNorm2d``. A process with an empty slice of the batch contributes nothing and still takes part.
    """

    @classmethod
    def sharing(cls, bn: nn.BatchNorm2d) -> GlobalBatchNorm2d:
        """A global batch norm that shares ``bn``'s parameters and buffers (the same tensors, not copies)."""
        if bn.momentum is None or not bn.affine or not bn.track_running_stats:
            raise ValueError("global batch norm supports affine BatchNorm2d with running stats and a momentum")
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        for name in ("num_features", "eps", "momentum", "affine", "track_running_stats"):
            setattr(new, name, getattr(bn, name))
        new.weight, new.bias = bn.weight, bn.bias
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            new.register_buffer(name, getattr(bn, name))
        new.train(bn.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        xf = x.float()
        c = x.shape[1]
        local = torch.cat([xf.sum((0, 2, 3)), xf.new_full((1,), x.numel() // c)])
        total = _all_reduce_sum(local)
        count = total[-1].detach()
        mean = total[:c] / count
        centred = xf - mean[None, :, None, None]
        var = _all_reduce_sum((centred * centred).sum((0, 2, 3))) / count
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.detach().to(self.running_mean.dtype), alpha=m)
            unbiased = var.detach() * (count / (count - 1)) if count > 1 else var.detach()
            self.running_var.mul_(1 - m).add_(unbiased.to(self.running_var.dtype), alpha=m)
            self.num_batches_tracked.add_(1)
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


@contextlib.contextmanager
def global_batch_norm(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every ``BatchNorm2d`` of ``model`` is a :class:`GlobalBatchNorm2d` sharing its tensors;
    the original modules (holding the trained values) are put back afterwards, so ``state_dict`` keys and the
    model's class never change."""
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if type(child) is nn.BatchNorm2d]
    for parent, name, child in swaps:
        parent._modules[name] = GlobalBatchNorm2d.sharing(child)
    try:
        yield model
    finally:
        for parent, name, child in swaps:
            parent._modules[name] = child


def check_same_everywhere(*arrays: np.ndarray) -> None:
    """Raise ``ValueError`` unless every process holds byte-identical ``arrays`` (the training pairs and the epoch
    to start from; compared by SHA-1 digest)."""
    digest = hashlib.sha1()
    for a in arrays:
        digest.update(str((a.shape, a.dtype)).encode())
        digest.update(np.ascontiguousarray(a).data)
    digests: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(digests, digest.hexdigest())
    if len(set(digests)) > 1:
        raise ValueError("the training pairs or the epoch to resume from differ between processes; every process "
                         "must pass the same inputs and targets (each takes its slice of every global batch) and "
                         "see the same checkpoint (a shared filesystem)")
