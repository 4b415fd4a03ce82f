"""The CLI's application object: the global options and what follows from them (hatch's ``Application``).

The root command creates one `Application` per invocation and click hands it to every
subcommand that asks (``@pass_app``), so a subcommand never reads global options itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import click


@dataclass
class Application:
    """Global options, available to every subcommand."""

    verbose: bool = False  # on an error, print its traceback above the one Error: line
    device: str | None = None  # the global --device; None: CUDA when available, else the CPU

    def resolve_device(self, requested: str | None = None, *, local_rank: int | None = None) -> str:
        """The torch device name: ``requested`` (a command's own --device), else the global one, else the default.

        ``local_rank``: a torchrun process's local rank, whose own GPU a CUDA device then is
        (`avlabel._sharding.torchrun_local_rank`). Imports torch: call inside commands.
        """
        from avlabel._device import resolve_device

        return str(resolve_device(requested or self.device, local_rank=local_rank))


# A subcommand decorated with @pass_app receives the Application as its first argument.
pass_app = click.make_pass_decorator(Application, ensure=True)
