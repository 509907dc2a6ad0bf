"""torchrun / DDP helpers: process-group setup and an all_gather that passes gradients back.

Every rank embeds its own micro-batch; :func:`gather_with_grad` concatenates all ranks'
embeddings in rank order so each rank's negatives span the global batch. In backward the
gradient of the concatenation is summed over ranks (each rank's loss touches every rank's
embeddings) and each rank keeps its own slice. With DDP averaging parameter gradients over
ranks, the result is the gradient of the mean of the per-rank losses, which equals the
single-process loss on the global batch.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op for one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    log.info("distributed: rank %d of %d (local rank %d)", info.rank, info.world_size, info.local_rank)
    return info


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size()
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """``cat`` of ``x`` from all ranks in rank order ([world*n, ...]); gradients flow back to each rank's ``x``.

    Every rank must pass the same shape. Without a process group it returns ``x``.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def all_reduce_mean(value: float, device) -> float:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return float(value)
    t = torch.tensor([float(value)], device=device, dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def local_rows(rank: int, world: int, n_local: int) -> torch.Tensor:
    """Rows of ``cat(gather(za), gather(zb))`` ([2*world*n_local]) that belong to ``rank``'s pairs."""
    start = rank * n_local
    a = torch.arange(start, start + n_local)
    return torch.cat([a, a + world * n_local])


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
