"""The root command: help, version, import lightness, and the exit-status-2 error contract."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

import avlabel
from avlabel.cli import cli

HEAVY_MODULES = ("torch", "transformers", "sentence_transformers", "timm", "gensim", "sklearn", "av", "cv2")


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert avlabel.__version__ in result.output


def test_help_lists_the_pipeline_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("savld", "inspect", "labels", "train", "eval"):
        assert command in result.output


def test_help_and_every_subcommand_help_import_no_heavy_library():
    # Loading every subcommand (as `avlabel --help` does) must not pull in torch & co.
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from avlabel.cli import cli\n"
        "runner = CliRunner()\n"
        "assert runner.invoke(cli, ['--help']).exit_code == 0\n"
        "for name in cli.list_commands(None):\n"
        "    assert runner.invoke(cli, [name, '--help']).exit_code == 0, name\n"
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_verbose_prints_the_traceback_above_the_one_error_line(tmp_path):
    missing = str(tmp_path / "missing.yaml")
    quiet = CliRunner().invoke(cli, ["train", "--config", missing])
    assert quiet.exit_code == 2 and "Traceback" not in quiet.output
    assert quiet.output.startswith("Error: config file ") and quiet.output.count("\n") == 1
    verbose = CliRunner().invoke(cli, ["--verbose", "train", "--config", missing])
    assert verbose.exit_code == 2 and verbose.output.startswith("Traceback (most recent call last):")
    assert "AvlabelError" in verbose.output
    assert verbose.output.splitlines()[-1] == quiet.output.rstrip("\n")  # the Error: line still comes last
