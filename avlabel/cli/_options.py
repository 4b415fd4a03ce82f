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

