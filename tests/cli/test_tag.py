"""`avlabel tag FILE`: the top labels of a real file through a tiny AST loaded from a directory."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from avlabel.cli import cli
from tests.audio._media import save_tiny_ast, write_media


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from avlabel.labels import load_label_set

    root = tmp_path_factory.mktemp("tag")
    return write_media(root / "media"), save_tiny_ast(root / "ast", load_label_set("audioset").labels)


def test_tag_prints_a_table(setup):
    media, ast = setup
    result = CliRunner().invoke(cli, ["tag", str(media["stereo_mp4"]), "--ast", str(ast), "--top", "4"])
    assert result.exit_code == 0, result.output
    assert "stereo.mp4: top 4 AudioSet labels" in result.stdout and "/m/" in result.stdout


def test_tag_json_lists_labels_with_mids(setup):
    from avlabel.labels import load_label_set

    media, ast = setup
    result = CliRunner().invoke(cli, ["tag", str(media["tone_wav"]), "--ast", str(ast), "--top", "3", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    audioset = load_label_set("audioset")
    assert payload["status"] == "ok" and [row["rank"] for row in payload["labels"]] == [1, 2, 3]
    for row in payload["labels"]:
        assert row["mid"] == audioset.ids[audioset.index(row["label"])] and 0 < row["probability"] < 1


def test_tag_without_audio_says_so(setup):
    media, ast = setup
    result = CliRunner().invoke(cli, ["tag", str(media["no_audio_mp4"]), "--ast", str(ast)])
    assert result.exit_code == 0 and "no audio to tag (no audio stream)" in result.stdout


@pytest.mark.parametrize(("which", "message"), [("file", "corrupt"), ("ast", "directory not found")])
def test_tag_errors_are_one_line_exit_2(setup, tmp_path, which, message):
    media, ast = setup
    target, checkpoint = (media["garbage_mp4"], ast) if which == "file" else (media["tone_wav"], tmp_path / "missing")
    result = CliRunner().invoke(cli, ["tag", str(target), "--ast", str(checkpoint)])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and message in result.stderr and result.stderr.count("\n") == 1
