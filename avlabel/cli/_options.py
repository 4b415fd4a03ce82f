"""Helpers shared by subcommands."""

from __future__ import annotations

import click


def resolve_device(ctx: click.Context) -> str:
    """The torch device from the global ``--device`` option (imports torch: call inside commands)."""
    import torch

    from avlabel.errors import AvlabelError

    requested = ctx.find_root().obj.device if ctx.find_root().obj else None
    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise AvlabelError(f"--device {requested} was asked for but no CUDA GPU is visible; use --device cpu")
    return requested
