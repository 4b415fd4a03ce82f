"""Helpers shared by subcommands."""

from __future__ import annotations

import click

from avlabel._checks import DEFAULT_WARN_FAILED_SHARE

# Shared by the long jobs that skip unreadable items (`avlabel flow`, `avlabel targets`).
warn_failed_option = click.option(
    "--warn-failed",
    "warn_failed_share",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_WARN_FAILED_SHARE,
    show_default=True,
    metavar="SHARE",
    help="Warn loudly when more than this share of the videos cannot be read (all of them failing is an error).",
)


def resolve_device(ctx: click.Context, requested: str | None = None) -> str:
    """The torch device: ``requested``, else the global ``--device``, else cuda when available.

    Imports torch: call inside commands. A name torch does not know, or CUDA that is not there,
    is one ``AvlabelError``.
    """
    import torch

    from avlabel.errors import AvlabelError

    root = ctx.find_root().obj
    requested = requested or (root.device if root else None)
    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise AvlabelError(f"unknown device {requested!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AvlabelError(f"--device {requested} was asked for but no CUDA GPU is visible; use --device cpu")
    return requested
