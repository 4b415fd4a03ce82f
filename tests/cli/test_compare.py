"""`avlabel compare`: agreement between two dictionaries (Table 2's backend x metric ablation)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from avlabel.cli import cli
from avlabel.labels import LabelSet
from avlabel.savld import Savld, default_savld_path, save_savld

VIDEO = LabelSet("v", ("playing drums", "applauding", "barking"))
AUDIO = LabelSet("a", ("Drum", "Applause", "Bark", "Music"))


def _save(path, neighbours, metric="cosine", k=2):
    scores = np.tile(np.linspace(1, 0.5, k, dtype=np.float32), (3, 1))
    return save_savld(Savld(VIDEO, AUDIO, k, metric, np.array(neighbours), scores, {"backend": "test"}), path)


@pytest.fixture
def pair(tmp_path):
    first = _save(tmp_path / "a.json", [[0, 3], [1, 3], [2, 3]])
    second = _save(tmp_path / "b.txt", [[0, 3], [1, 0], [2, 1]], metric="euclidean")
    return first, second


def test_mean_jaccard_and_most_different_labels(pair):
    result = CliRunner().invoke(cli, ["compare", *map(str, pair), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # rows: {0,3}v{0,3}=1, {1,3}v{1,0}=1/3, {2,3}v{2,1}=1/3
    assert summary["mean_jaccard"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)
    assert summary["identical_rows"] == 1
    worst = summary["most_different"][0]
    assert (
        worst["video_label"] == "applauding" and worst["only_first"] == ["Music"] and worst["only_second"] == ["Drum"]
    )


def test_table_output(pair):
    result = CliRunner().invoke(cli, ["compare", *map(str, pair), "--top", "2"])
    assert result.exit_code == 0
    assert "mean Jaccard 0.556" in result.stdout and "identical rows 1 of 3" in result.stdout
    assert "video labels that differ most" in result.stdout


def test_identical_dictionaries_agree_fully():
    path = str(default_savld_path())
    summary = json.loads(CliRunner().invoke(cli, ["compare", path, path, "--json"]).stdout)
    assert summary["mean_jaccard"] == 1.0 and summary["identical_rows"] == 400


def test_dictionaries_over_other_label_sets_are_refused(pair):
    result = CliRunner().invoke(cli, ["compare", str(pair[0]), str(default_savld_path())])
    assert result.exit_code == 2
    assert "built for video labels 'kinetics400'" in result.stderr
