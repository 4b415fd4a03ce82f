"""The ``avlabel`` command line: a root group with lazily imported subcommands.

Each subcommand lives in its own module (hatch's layout) and is a thin adapter over a core
function. Modules are imported only when their command runs or help is shown, and import only
click and light avlabel modules at top level; torch, transformers, sentence-transformers, PyAV
and friends are imported inside the command body, so ``avlabel --help`` stays fast.
"""

from __future__ import annotations

import importlib
import traceback
import warnings

import click

from avlabel import __version__
from avlabel.cli._application import Application
from avlabel.errors import AvlabelError, AvlabelWarning

# name -> "module:attribute"; one module per subcommand.
_COMMANDS = {
    "bench": "avlabel.cli.bench:bench",
    "compare": "avlabel.cli.compare:compare",
    "data": "avlabel.cli.data:data",
    "eval": "avlabel.cli.eval:eval_command",
    "flow": "avlabel.cli.flow:flow",
    "inspect": "avlabel.cli.inspect:inspect",
    "labels": "avlabel.cli.labels:labels",
    "models": "avlabel.cli.models:models",
    "predict": "avlabel.cli.predict:predict",
    "report": "avlabel.cli.report:report",
    "savld": "avlabel.cli.savld:savld",
    "synth": "avlabel.cli.synth:synth",
    "tag": "avlabel.cli.tag:tag",
    "targets": "avlabel.cli.targets:targets",
    "train": "avlabel.cli.train:train",
}


class _RootGroup(click.Group):
    """Loads subcommands on demand; every bad input ends as one ``Error:`` line and exit status 2.

    This is the one place where errors meet the user: `AvlabelError` from the core, a bad
    option value from click (without click's three-line usage block), and the file-system errors
    that no check can rule out in advance (a disk that fills up, a folder that vanishes mid-run).
    `AvlabelWarning`\\ s print as one ``Warning:`` line each, when they happen. With the
    global ``--verbose`` an error's traceback comes first (for a bug report), the ``Error:`` line last.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx: click.Context):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except AvlabelError as error:
            _fail(ctx, str(error))
        except click.exceptions.NoArgsIsHelpError:
            raise  # `avlabel data` alone: click prints the group's help
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx is not None else ctx.command_path
            _fail(ctx, f"{error.format_message().rstrip('.')}; see '{command} --help'")
        except OSError as error:
            where = f": {error.filename}" if error.filename else ""
            _fail(
                ctx, f"{error.strerror or error}{where}; check the path, its permissions and the free space, then rerun"
            )


def _fail(ctx: click.Context, message: str) -> None:
    if isinstance(ctx.obj, Application) and ctx.obj.verbose:
        click.echo(traceback.format_exc(), err=True, nl=False)
    click.echo(f"Error: {' '.join(message.split())}", err=True)
    ctx.exit(2)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, AvlabelWarning):
        click.secho(f"Warning: {' '.join(str(message).split())}", err=True, fg="yellow", bold=True)
    else:
        click.echo(warnings.formatwarning(message, category, filename, lineno, line), err=True, nl=False)


@click.group(cls=_RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="avlabel")
@click.option(
    "-v", "--verbose", is_flag=True, help="On an error, print its traceback above the Error: line (for bug reports)."
)
@click.option(
    "--device",
    default=None,
    help="Torch device for commands that run models (cpu, cuda, cuda:1). Default: cuda if available.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: bool, device: str | None) -> None:
    """Multimodal action recognition with learnable irrelevant modality dropout (IMD)."""
    ctx.obj = Application(verbose=verbose, device=device)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="avlabel")
