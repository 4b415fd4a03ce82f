"""The one rich progress bar of avlabel's long jobs (training, flow, synth, audio cache, evaluation).

Bars go to stderr so that results on stdout stay pipeable. Jobs report progress either as
``bar(done, total)`` (callbacks from worker pools), as ``bar.advance(n)`` (loops over batches) or
as ``bar.update(completed, description=..., stats=...)`` (training: the epoch and the running
loss, accuracy and clips/s beside the bar); all drive the same bar.

A bar is only for a terminal: redirected to a file or a pipe it prints nothing live (each
command prints its own summary; ``keep=True`` leaves the final bar as one line there too, for a
cluster log), and in a terminal a job that fails erases its bar, so that what is left of a
failed run is its one ``Error:`` line.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator


class ProgressBar:
    """Handle yielded by `progress_bar`."""

    def __init__(self, progress, task) -> None:
        self._progress = progress
        self._task = task

    def __call__(self, done: int, total: int | None) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def advance(self, count: int = 1) -> None:
        self._progress.advance(self._task, count)

    def update(
        self, completed: int, *, description: str | None = None, stats: dict[str, float | None] | None = None
    ) -> None:
        """Move to ``completed``; a new ``description`` and the ``stats`` shown beside the bar."""
        fields = {"stats": "  ".join(f"{name} {_short(value)}" for name, value in stats.items())} if stats else {}
        self._progress.update(self._task, completed=completed, description=description, **fields)

    def print(self, message: str) -> None:
        """A line above the bar (it stays when the bar goes)."""
        self._progress.console.print(message, highlight=False)


@contextlib.contextmanager
def progress_bar(
    description: str,
    total: int | None = None,
    disable: bool = False,
    *,
    completed: int = 0,
    stats: bool = False,
    keep: bool = False,
) -> Iterator[ProgressBar]:
    """A bar labelled ``description`` on stderr.

    Args:
        description: the label (``bar.update`` may change it).
        total: the count to reach (None: unknown until ``bar(done, total)`` says).
        disable: draw nothing (library use, or a training rank other than the main one).
        completed: where it starts (a resumed job).
        stats: leave room beside the bar for ``bar.update(..., stats=...)`` and label the time left "ETA".
        keep: leave the final bar on screen, also where stderr is no terminal.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from avlabel._console import err_console

    console = err_console()
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
    columns += (
        [TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("ETA")] if stats else [TimeElapsedColumn()]
    )
    progress = Progress(
        *columns, TimeRemainingColumn(), console=console, disable=disable, transient=not (keep or console.is_terminal)
    )
    task = progress.add_task(description, total=total, completed=completed, stats="")
    with progress:
        try:
            yield ProgressBar(progress, task)
        except BaseException:
            progress.live.transient = True  # a failed job ends in its one Error: line, without a bar above it
            raise


def _short(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"
