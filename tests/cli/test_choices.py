"""Every closed set of option values is a click.Choice listing exactly what the core accepts."""

from __future__ import annotations

import click
import pytest

from avlabel.audio.embedders import EMBEDDERS
from avlabel.audio.targets import NORMALIZATIONS, OVERLAPS
from avlabel.cli import cli
from avlabel.data.adapters import ADAPTERS
from avlabel.data.flow_estimators import DIS_PRESETS, METHODS
from avlabel.data.flow_format import FORMATS
from avlabel.data.synth.visuals import VISUAL_CUES
from avlabel.embed import BACKENDS
from avlabel.savld import METRICS


def _choices(path: list[str], option: str) -> list[str]:
    command = cli
    for name in path:
        command = command.get_command(None, name)
    (param,) = [p for p in command.params if option in p.opts]
    assert isinstance(param.type, click.Choice), f"{' '.join(path)} {option} is not a click.Choice"
    return list(param.type.choices)


@pytest.mark.parametrize(
    ("path", "option", "accepted"),
    [
        (["savld"], "--metric", METRICS),
        (["savld"], "--backend", BACKENDS),
        (["flow"], "--method", METHODS),
        (["flow"], "--preset", DIS_PRESETS),
        (["flow"], "--format", FORMATS),
        (["targets"], "--embedder", EMBEDDERS),
        (["targets"], "--overlap", OVERLAPS),
        (["targets"], "--normalize", NORMALIZATIONS),
        (["synth"], "--visual-cue", VISUAL_CUES),
        (["data", "manifest"], "--format", ADAPTERS),
    ],
)
def test_closed_sets_are_choices_of_what_the_core_accepts(path, option, accepted):
    assert _choices(path, option) == list(accepted)


def test_savld_names_every_output_format_it_writes(tmp_path):
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["savld", "-o", str(tmp_path / "savld.csv")])
    assert result.exit_code == 2
    assert result.output.startswith(
        "Error: cannot tell the SAVLD format from 'savld.csv'; end the file name in .json, .txt or .tsv"
    )
