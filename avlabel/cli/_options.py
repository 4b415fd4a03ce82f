"""Options and option types shared by subcommands: the one place a shared option is defined."""

from __future__ import annotations

from pathlib import Path

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


# Shared by the long jobs that split a manifest over the processes of a cluster job.
shard_option = click.option(
    "--shard",
    "shard",
    default=None,
    metavar="I/N",
    help="Compute shard I of N (0-based) of the manifest, split by a hash of the video id, into the shared output "
    "(the last shard to finish merges it). Default: the Slurm array task (SLURM_ARRAY_TASK_ID) or torchrun rank "
    "(RANK/WORLD_SIZE), else the whole manifest; 0/1 turns that detection off.",
)


class NamedChoice(click.Choice):
    """A closed set of names refused in avlabel's words: ``unknown metric 'x'; choose one of a, b, c``."""

    def __init__(self, choices, noun: str) -> None:
        super().__init__(choices)
        self.noun = noun

    def convert(self, value, param, ctx):
        if value in self.choices:
            return value
        self.fail(f"unknown {self.noun} {value!r}; choose one of {', '.join(self.choices)}", param, ctx)


# A trained run to apply (`avlabel eval`, `avlabel predict`).
run_option = click.option(
    "--run", "run", required=True, type=click.Path(path_type=Path), help="Run directory (or a .safetensors checkpoint)."
)
checkpoint_option = click.option(
    "--checkpoint", default="best", show_default=True, help="best, last or a checkpoint path."
)
views_option = click.option(
    "--views", default="3x4", show_default=True, help="Spatial crops x temporal clips per video (1x1: single view)."
)
