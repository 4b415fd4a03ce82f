"""Which torch device a command, a training rank or a library call runs on: avlabel's one resolution.

The CLI's global and per-command ``--device``, training's ``runtime.device`` (one GPU per
torchrun rank), the throughput benchmark, ``tvl1-torch`` flow and the sentence encoder all
resolve their device here, so a request is understood, and refused, the same way everywhere.
Imports torch: call it inside the code that needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from avlabel.errors import AvlabelError

if TYPE_CHECKING:
    import torch


def resolve_device(
    requested: str | None = None, *, setting: str = "--device", local_rank: int | None = None
) -> torch.device:
    """The torch device for ``requested``.

    Args:
        requested: None or ``"auto"`` (CUDA when available, else the CPU), or a torch device
            name (``cpu``, ``cuda``, ``cuda:1``).
        setting: the option or config key the request came from, named in errors
            (``--device``, ``runtime.device``).
        local_rank: a torchrun rank's local rank: a CUDA request then means that rank's own GPU.

    Raises:
        AvlabelError: a name torch does not know, CUDA asked for but absent, or a GPU index
            (or local rank) beyond the visible GPUs.
    """
    import torch

    cuda = torch.cuda.is_available()
    if requested in (None, "auto"):
        requested = "cuda" if cuda else "cpu"
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise AvlabelError(f"unknown device {requested!r}; use cpu, cuda or cuda:N") from None
    if device.type != "cuda":
        return device
    if not cuda:
        if setting.startswith("--"):
            raise AvlabelError(f"{setting} {requested} was asked for but no CUDA GPU is visible; use {setting} cpu")
        raise AvlabelError(f"{setting} is {requested!r} but no CUDA GPU is visible; set {setting}=cpu (or auto)")
    count = torch.cuda.device_count()
    if local_rank is not None:
        # One GPU per torchrun rank; an explicit index makes no sense when ranks share a node.
        if local_rank >= count:
            raise AvlabelError(
                f"local rank {local_rank} has no GPU: only {count} visible; start torchrun with --nproc_per_node at most the GPU count"
            )
        return torch.device("cuda", local_rank)
    if device.index is not None and device.index >= count:
        raise AvlabelError(f"{setting} {requested!r}: only {count} GPU(s) visible")
    return device
