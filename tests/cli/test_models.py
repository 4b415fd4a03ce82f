"""`avlabel models`: the table, the JSON figures, one-line errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

from avlabel.cli import cli


def test_json_lists_matching_configs_with_their_figures():
    result = CliRunner().invoke(cli, ["models", "*tiny", "--json", "--no-ast"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ["imd_tiny", "timesformer_tiny", "avt_tiny"]
    assert rows[2]["fusion"] == "bottleneck 4@2" and rows[2]["params"]["audio"] > 0
    imd = rows[0]
    assert imd["modalities"] == ["rgb", "flow", "audio"] and imd["fusion"] == "imd"
    assert set(imd["params"]) == {"visual", "audio", "fusion", "total"}
    assert imd["params"]["total"] == sum(imd["params"][part] for part in ("visual", "audio", "fusion"))
    assert imd["gflops"]["visual"] > imd["gflops"]["fusion"] > 0
    assert rows[1]["fusion"] is None and rows[1]["params"]["audio"] == 0


def test_table_shows_every_model_and_the_ast_apart():
    result = CliRunner().invoke(cli, ["models", "imd_tiny"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "imd_tiny" in result.stdout and "rgb+flow+audio" in result.stdout
    assert "86.2" in result.stdout  # AST-base parameters (M), counted separately


def test_unknown_pattern_is_a_one_line_error():
    result = CliRunner().invoke(cli, ["models", "resnet*"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: no model config matches 'resnet*'; available: imd_b, imd_l, timesformer_b, avt_b, imd_tiny, "
        "timesformer_tiny, avt_tiny"
    )
