"""`avlabel inspect`: the shipped default dictionary, --savld files, reverse look-ups, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from avlabel.cli import cli
from avlabel.labels import LabelSet
from avlabel.savld import Savld, save_savld


def _run(*args: str):
    return CliRunner().invoke(cli, ["inspect", *args])


def test_video_label_row_from_the_shipped_dictionary():
    result = _run("playing drums")
    assert result.exit_code == 0, result.output
    assert "playing drums → audioset" in result.stdout
    assert "Drum" in result.stdout and "similarity" in result.stdout
    assert "shared with" in result.stdout and "air drumming" in result.stdout
    assert "kinetics400-audioset-bert-k10-cosine.txt" in result.stdout


def test_a_word_that_is_no_label_lists_the_labels_containing_it():
    result = _run("dancing")
    assert result.exit_code == 0, result.output
    assert "'dancing' is not a kinetics400 label; 13 labels contain it" in result.stdout
    assert "salsa dancing" in result.stdout and "Salsa music" in result.stdout


def test_reverse_lookup_of_an_audio_label():
    result = _run("--audio", "music")
    assert result.exit_code == 0, result.output
    assert "labels whose top 10 contain 'Music'" in result.stdout
    assert "recording music" in result.stdout and "rank there" in result.stdout


@pytest.fixture
def toy_file(tmp_path):
    video = LabelSet("toy_video", ("playing drums", "applauding"))
    audio = LabelSet("toy_audio", ("Drum", "Applause", "Silence"))
    savld = Savld(
        video, audio, 2, "euclidean", np.array([[0, 2], [1, 2]]), np.array([[0.5, 1.5], [0.25, 2.0]], np.float32)
    )
    return save_savld(savld, tmp_path / "toy.json")


def test_savld_file_option_and_distances(toy_file):
    result = _run("applauding", "--savld", str(toy_file))
    assert result.exit_code == 0, result.output
    assert "distance" in result.stdout and "Applause" in result.stdout and "0.250" in result.stdout
    assert "1: playing drums" in result.stdout  # Silence is shared with the other video label
    reverse = _run("--audio", "Silence", "--savld", str(toy_file))
    assert reverse.stdout.index("playing drums") < reverse.stdout.index("applauding")  # smaller distance first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["danceing"], "unknown label 'danceing' in kinetics400; did you mean 'tap dancing'"),
        (["--audio", "Musik"], "unknown label 'Musik' in audioset; did you mean 'Music'"),
        ([], "give a video label"),
        (["dancing", "--audio", "Music"], "give a video label"),
        (["dancing", "--savld", "missing.json"], "does not exist"),
    ],
)
def test_errors_exit_2_with_one_line(args, message):
    result = _run(*args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_inspect_imports_no_heavy_library():
    code = (
        "import sys; from click.testing import CliRunner; from avlabel.cli import cli; "
        "r = CliRunner().invoke(cli, ['inspect', 'dancing']); assert r.exit_code == 0, r.output; "
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'sklearn', 'gensim', 'scipy') if m in sys.modules]; "
        "print(heavy)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
