"""One code path from a laptop CPU to many GPUs: torchrun detection and DDP helpers.

``torchrun --nproc_per_node N -m avlabel train ...`` sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE`` (also across nodes, through its rendezvous); their presence is what switches
the loop to DistributedDataParallel, as in nanoGPT. CUDA ranks use NCCL and one GPU each
(``cuda:LOCAL_RANK``); CPU ranks use gloo. A plain ``avlabel train`` is a world of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from avlabel._device import resolve_device


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only the main process logs, shows progress and writes files."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()


def setup_distributed(requested_device: str) -> DistContext:
    """Join the torchrun job if there is one and pick this process's device.

    Args:
        requested_device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (from ``runtime.device``).

    Raises:
        AvlabelError: CUDA asked for but absent, or fewer GPUs than local ranks (`avlabel._device.resolve_device`).
    """
    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(requested_device, setting="runtime.device", local_rank=local_rank if launched else None)
    if launched and not dist.is_initialized():
        # DistributedDataParallel imports torch._dynamo. Imported after the process group
        # exists, torch._dynamo keeps the group alive past destroy_process_group (PyTorch 2.14):
        # gloo's worker and TCP threads then outlive teardown_distributed and still run while
        # the interpreter shuts down, where a worker freeing a collective's tensors needs the
        # GIL and the process aborts (SIGABRT, "terminate called without an active exception").
        # Imported first, it does not, and teardown joins those threads.
        import torch._dynamo  # noqa: F401

        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistContext(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def teardown_distributed() -> None:
    """Destroy the process group, joining its communication threads (see setup_distributed)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``values`` over all ranks (a no-op in a world of one)."""
    if ctx.is_distributed:
        values = values.to(ctx.device)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def gather_for_global_loss(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Every rank's ``values`` concatenated in rank order, for a loss every rank computes over all of them.

    The other ranks' parts arrive without gradient; this rank's part keeps its graph, with its
    gradient multiplied by the world size. Every rank then computes the same global loss, each
    rank's backward reaches only its own rows, and DistributedDataParallel averages gradients
    over ranks: the factor makes that average exactly the global loss's gradient (open_clip's
    gather without gradient, made exact). The parts must have equal shapes on every rank.
    """
    if not ctx.is_distributed:
        return values
    parts = [torch.empty_like(values) for _ in range(ctx.world_size)]
    dist.all_gather(parts, values.detach().contiguous())
    parts[ctx.rank] = _ScaleGradient.apply(values, float(ctx.world_size))
    return torch.cat(parts)


class _ScaleGradient(torch.autograd.Function):
    """The identity whose backward multiplies the gradient by ``factor``."""

    @staticmethod
    def forward(ctx, values: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return values.view_as(values)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.factor, None


def gather_strings(text: str, ctx: DistContext) -> list[str]:
    """Every rank's ``text`` in rank order (the strings must have equal lengths, like hex digests)."""
    if not ctx.is_distributed:
        return [text]
    mine = torch.tensor(list(text.encode("ascii")), dtype=torch.uint8, device=ctx.device)
    everyone = [torch.empty_like(mine) for _ in range(ctx.world_size)]
    dist.all_gather(everyone, mine)
    return [bytes(t.cpu().tolist()).decode("ascii") for t in everyone]


def barrier(ctx: DistContext) -> None:
    if ctx.is_distributed:
        dist.barrier()
