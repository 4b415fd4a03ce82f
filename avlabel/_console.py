"""Shared rich consoles: status and progress go to stderr, results to stdout (pipeable)."""

from __future__ import annotations

from functools import cache


@cache
def err_console():
    """The console for status messages, tables of progress and warnings (stderr)."""
    from rich.console import Console

    return Console(stderr=True)


@cache
def out_console():
    """The console for results a user may pipe (stdout)."""
    from rich.console import Console

    return Console()
