"""The one rich progress bar of avlabel's long jobs (flow, synth, audio cache, evaluation).

Bars go to stderr so that results on stdout stay pipeable. Jobs report progress either as
``bar(done, total)`` (callbacks from worker pools) or as ``bar.advance(n)`` (loops over batches);
both drive the same bar.

A bar is only for a terminal: redirected to a file or a pipe it prints nothing (each command
prints its own summary), and in a terminal a job that fails erases its bar, so that what is
left of a failed run is its one ``Error:`` line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class ProgressBar:
    """Handle yielded by :func:`progress_bar`."""

    def __init__(self, progress, task) -> None:
        self._progress = progress
        self._task = task

    def __call__(self, done: int, total: int | None) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def advance(self, count: int = 1) -> None:
        self._progress.advance(self._task, count)


@contextlib.contextmanager
def progress_bar(description: str, total: int | None = None, disable: bool = False) -> Iterator[ProgressBar]:
    """A bar labelled ``description`` on stderr (``disable`` hides it, e.g. in library use)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from avlabel._console import err_console

    console = err_console()
    progress = Progress(TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=console, disable=disable, transient=not console.is_terminal)  # fmt: skip
    task = progress.add_task(description, total=total)
    with progress:
        try:
            yield ProgressBar(progress, task)
        except BaseException:
            progress.live.transient = True  # a failed job ends in its one Error: line, without a bar above it
            raise
