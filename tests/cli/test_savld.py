"""`avlabel savld` through Click's runner: real builds, the summary, and every bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from avlabel.cli import cli
from avlabel.savld import load_savld


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One embedding cache per test session (shared with tests/test_savld.py): one MiniLM pass."""
    path = tmp_path_factory.getbasetemp() / "shared-embedding-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def run(shared_cache, monkeypatch):
    """Invoke the CLI with the session's shared embedding cache."""
    monkeypatch.setenv("AVLABEL_CACHE_DIR", str(shared_cache))

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["--device", "cpu", *args])

    return invoke


def test_default_build_writes_json_and_prints_a_summary(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("savld", "--video", "kinetics400", "--audio", "audioset", "--k", "10", "--metric", "cosine")
    assert result.exit_code == 0, result.output
    path = tmp_path / "savld-kinetics400-audioset-bert-k10-cosine.json"
    dictionary = load_savld(path)
    assert dictionary.k == 10 and len(dictionary.video) == 400
    assert "SAVLD kinetics400 → audioset" in result.stdout
    assert "all-MiniLM-L6-v2" in result.stdout and "audio labels used" in result.stdout
    # The second build is served by the embedding cache and is identical.
    again = run("savld", "-o", str(tmp_path / "again.json"))
    assert again.exit_code == 0
    assert (load_savld(tmp_path / "again.json").neighbours == dictionary.neighbours).all()


def test_text_output_with_templates_and_user_label_file(run, tmp_path):
    labels = tmp_path / "my_actions.txt"
    labels.write_text("playing drums\nApplauding\nwalking the dog\n", encoding="utf-8")
    out = tmp_path / "d.txt"
    result = run(
        "savld",
        "--video",
        str(labels),
        "--audio",
        "esc50",
        "-k",
        "3",
        "--video-template",
        "a video of {}",
        "--audio-template",
        "the sound of {}",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    assert [row[0] for row in rows] == ["playing drums", "Applauding", "walking the dog"]
    assert "clapping" in rows[1][1:4]
    assert load_savld(out).provenance["video_template"] == "a video of {}"


def test_glove_and_word2vec_backends(run, tmp_path):
    from gensim.models import Word2Vec

    result = run("savld", "--backend", "glove", "--metric", "manhattan", "-o", str(tmp_path / "g.json"))
    assert result.exit_code == 0, result.output
    assert "Caterwaul" in result.stderr  # reported: no known word, never matched
    vectors = tmp_path / "w2v.bin"
    sentences = [["dog", "bark", "puppy"], ["drum", "beat", "music"], ["clap", "crowd", "cheer"]] * 10
    Word2Vec(sentences, vector_size=8, min_count=1, workers=1, seed=0).wv.save_word2vec_format(
        str(vectors), binary=True
    )
    video, audio = tmp_path / "v.txt", tmp_path / "a.txt"
    video.write_text("dog\ndrum\n", encoding="utf-8")
    audio.write_text("bark\nbeat\nclap\n", encoding="utf-8")
    result = run(
        "savld",
        "--backend",
        "word2vec",
        "--vectors",
        str(vectors),
        "--video",
        str(video),
        "--audio",
        str(audio),
        "-k",
        "2",
        "--metric",
        "euclidean",
        "-o",
        str(tmp_path / "w.json"),
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "w.json").read_text(encoding="utf-8"))
    assert data["provenance"]["backend"] == "word2vec" and data["metric"] == "euclidean"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--video", "kinetic400"], "unknown label set 'kinetic400'; choose one of"),
        (["--video", "missing.txt"], "does not exist"),
        (["--video", "empty.txt"], "is empty"),
        (["--video", "dupes.txt"], "duplicate label 'dog'"),
        (["--k", "0"], "k must be between 1 and 527"),
        (["--k", "528"], "k must be between 1 and 527"),
        (["--metric", "cos"], "unknown metric 'cos'"),
        (["--backend", "elmo"], "unknown backend 'elmo'"),
        (["--backend", "word2vec"], "no bundled vectors; pass --vectors PATH"),
        (["--backend", "glove", "--vectors", "broken.bin"], "cannot read word vectors"),
        (["--backend", "glove", "--vectors", "nope.bin"], "does not exist"),
        (["--video-template", "a video of"], "must contain exactly one '{}'"),
        (["-o", "out.yaml"], "end the file name in .json, .txt or .tsv"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_file(run, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    (tmp_path / "dupes.txt").write_text("dog\ncat\ndog\n", encoding="utf-8")
    (tmp_path / "broken.bin").write_bytes(b"2 4\n\x00\x01\x02")
    before = set(tmp_path.iterdir())
    result = run("savld", *args, "-o", "out.json") if "-o" not in args else run("savld", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert set(tmp_path.iterdir()) == before
