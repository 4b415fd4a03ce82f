"""SAVLD: meaningful neighbours with the real MiniLM, every metric, lossless files, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avlabel.errors import AvlabelError
from avlabel.labels import LabelSet, load_label_set
from avlabel.savld import (
    METRICS,
    Savld,
    build_savld,
    compare_savld,
    default_savld_path,
    load_savld,
    save_savld,
)


@pytest.fixture(scope="module")
def shared_cache_dir(tmp_path_factory):
    """One embedding cache per test session (shared with tests/cli/test_savld.py): MiniLM embeds
    each label once and later builds read it, as a user's second build does."""
    path = tmp_path_factory.getbasetemp() / "shared-embedding-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def _use_shared_cache(_isolated_cache, shared_cache_dir, monkeypatch):
    monkeypatch.setenv("AVLABEL_CACHE_DIR", str(shared_cache_dir))


@pytest.fixture(scope="module")
def kinetics_audioset(shared_cache_dir) -> Savld:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AVLABEL_CACHE_DIR", str(shared_cache_dir))
        return build_savld(
            load_label_set("kinetics400"), load_label_set("audioset"), k=10, metric="cosine", device="cpu"
        )


def _top(savld: Savld, video_label: str, n: int) -> list[str]:
    return [label for label, _ in savld.audio_labels(video_label)[:n]]


def test_playing_drums_maps_to_a_drum_label(kinetics_audioset):
    assert any("drum" in label.lower() for label in _top(kinetics_audioset, "playing drums", 3))


def test_applauding_maps_to_applause_or_clapping(kinetics_audioset):
    assert {"Applause", "Clapping"} & set(_top(kinetics_audioset, "applauding", 3))


def test_more_label_meaning(kinetics_audioset):
    assert "Singing" in _top(kinetics_audioset, "singing", 3)
    assert any("guitar" in label.lower() for label in _top(kinetics_audioset, "playing guitar", 3))
    assert "Sneeze" in _top(kinetics_audioset, "sneezing", 3)


def test_shape_order_and_provenance(kinetics_audioset):
    savld = kinetics_audioset
    assert savld.neighbours.shape == (400, 10) and savld.neighbours.dtype == np.int64
    assert savld.scores.dtype == np.float32
    assert np.all(np.diff(savld.scores, axis=1) <= 0), "cosine similarities must be best first"
    assert all(len(set(row)) == 10 for row in savld.neighbours.tolist())
    provenance = savld.provenance
    assert provenance["backend"] == "bert" and provenance["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert provenance["metric"] == "cosine" and provenance["k"] == 10
    assert provenance["video"] == {"name": "kinetics400", "size": 400, "sha256": savld.video.sha256}
    assert provenance["audio"]["sha256"] == load_label_set("audioset").sha256
    assert provenance["version"]


def test_reverse_direction_is_consistent(kinetics_audioset):
    savld = kinetics_audioset
    users = savld.video_labels("Music")
    assert users, "some video label must map to Music"
    for video, score in users:
        assert ("Music", score) in savld.audio_labels(video)
    assert [s for _, s in users] == sorted((s for _, s in users), reverse=True)
    total = sum(len(savld.video_labels(audio)) for audio in savld.audio.labels)
    assert total == 400 * 10


@pytest.mark.parametrize("metric", METRICS)
def test_every_metric_matches_scikit_learn(metric):
    from sklearn.neighbors import NearestNeighbors

    from avlabel.embed import create_embedder, embed_label_set

    video, audio = load_label_set("ucf101"), load_label_set("esc50")
    savld = build_savld(video, audio, k=5, metric=metric, device="cpu")
    embedder = create_embedder("bert", device="cpu")
    video_vectors = embed_label_set(video, embedder).vectors
    audio_vectors = embed_label_set(audio, embedder).vectors
    distances, indices = (
        NearestNeighbors(n_neighbors=5, metric=metric, algorithm="brute").fit(audio_vectors).kneighbors(video_vectors)
    )
    np.testing.assert_array_equal(savld.neighbours, indices)
    expected = 1.0 - distances if metric == "cosine" else distances
    np.testing.assert_allclose(savld.scores, expected, rtol=1e-5, atol=1e-5)
    if metric != "cosine":
        assert np.all(np.diff(savld.scores, axis=1) >= 0), "distances must be best (smallest) first"
    assert "dog" in [label for label, _ in savld.audio_labels("WalkingWithDog")]


def test_glove_backend_builds_kinetics_without_unknown_video_labels():
    savld = build_savld(
        load_label_set("kinetics400"), load_label_set("audioset"), k=10, backend="glove", metric="euclidean"
    )
    assert "Caterwaul" in savld.provenance["audio_without_vector"]
    caterwaul = savld.audio.index("Caterwaul")
    assert caterwaul not in savld.neighbours
    assert any("drum" in label.lower() for label in _top(savld, "playing drums", 5))


def test_templates_are_recorded_and_change_the_embedding():
    video, audio = load_label_set("esc50"), load_label_set("esc50")
    plain = build_savld(video, audio, k=1)
    assert plain.audio_labels("dog")[0][0] == "dog"
    prompted = build_savld(video, audio, k=1, video_template="a video of {}", audio_template="the sound of {}")
    assert prompted.provenance["video_template"] == "a video of {}"
    assert prompted.provenance["audio_template"] == "the sound of {}"
    assert not np.allclose(plain.scores, prompted.scores)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be between 1 and 50"),
        ({"k": 51}, "k must be between 1 and 50"),
        ({"metric": "cos"}, "unknown metric 'cos'; choose one of cosine, euclidean, manhattan"),
        ({"backend": "elmo"}, "unknown backend 'elmo'"),
        ({"video_template": "a video of"}, "--video-template 'a video of' must contain exactly one"),
    ],
)
def test_bad_build_requests(kwargs, message):
    with pytest.raises(AvlabelError, match=message):
        build_savld(load_label_set("ucf101"), load_label_set("esc50"), **kwargs)


def test_video_labels_unknown_to_word_vectors_are_refused(tmp_path):
    from gensim.models import Word2Vec

    vectors = tmp_path / "tiny.bin"
    Word2Vec([["dog", "bark", "drum"]] * 5, vector_size=4, min_count=1, workers=1, seed=0).wv.save_word2vec_format(
        str(vectors), binary=True
    )
    video, audio = LabelSet("v", ("dog", "qwertyuiop")), LabelSet("a", ("bark", "drum"))
    with pytest.raises(AvlabelError, match="1 v labels have no word known to the word2vec vectors \\('qwertyuiop'\\)"):
        build_savld(video, audio, k=1, backend="word2vec", vectors=str(vectors))
    savld = build_savld(LabelSet("v", ("dog",)), audio, k=2, backend="word2vec", vectors=str(vectors))
    assert savld.provenance["model"] == str(vectors.resolve())


# --- files ---------------------------------------------------------------------------------


def _assert_same(a: Savld, b: Savld) -> None:
    assert a.video == b.video and a.audio == b.audio and a.k == b.k and a.metric == b.metric
    np.testing.assert_array_equal(a.neighbours, b.neighbours)
    np.testing.assert_array_equal(a.scores, b.scores)  # bit-exact: both formats are lossless
    assert a.provenance == b.provenance


@pytest.mark.parametrize("suffix", [".json", ".txt", ".tsv"])
def test_round_trip_shipped_label_sets(tmp_path, kinetics_audioset, suffix):
    path = save_savld(kinetics_audioset, tmp_path / f"d{suffix}")
    _assert_same(kinetics_audioset, load_savld(path))


def _toy_savld(metric: str = "euclidean") -> Savld:
    video = LabelSet("my_video", ("Fill (with liquid)", "dog, puppy"))
    audio = LabelSet("my_audio", ("Chirp, tweet", "Bark", "Pour"), ids=("/m/1", "/m/2", "/m/3"))
    scores = np.array([[0.1, 0.30000001], [1 / 3, 2.5e-8]], dtype=np.float32)
    return Savld(video, audio, 2, metric, np.array([[2, 0], [1, 0]]), scores, {"backend": "test", "unknown_words": {}})


@pytest.mark.parametrize("suffix", [".json", ".txt"])
def test_round_trip_user_label_sets_with_commas_and_ids(tmp_path, suffix):
    savld = _toy_savld()
    path = save_savld(savld, tmp_path / f"toy{suffix}")
    _assert_same(savld, load_savld(path))


def test_text_format_is_the_papers_rows(tmp_path, kinetics_audioset):
    path = save_savld(kinetics_audioset, tmp_path / "d.txt")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#savld {")
    rows = [line.split("\t") for line in lines if not line.startswith("#")]
    assert len(rows) == 400 and all(len(row) == 21 for row in rows)
    drums = next(row for row in rows if row[0] == "playing drums")
    assert drums[1:11] == _top(kinetics_audioset, "playing drums", 10)
    # Shipped label sets are referenced by name and hash, not copied into the header.
    assert "labels" not in json.loads(lines[0][len("#savld ") :])["audio"]


def test_json_has_rows_scores_and_full_label_sets(tmp_path):
    path = save_savld(_toy_savld(), tmp_path / "toy.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "avlabel-savld"
    assert data["rows"][0] == {
        "video": "Fill (with liquid)",
        "audio": ["Pour", "Chirp, tweet"],
        "indices": [2, 0],
        "scores": data["rows"][0]["scores"],
    }
    assert data["audio"]["ids"] == ["/m/1", "/m/2", "/m/3"]


def test_label_set_compatibility_check(tmp_path, kinetics_audioset):
    path = save_savld(kinetics_audioset, tmp_path / "d.json")
    load_savld(path, video=load_label_set("kinetics400"), audio=load_label_set("audioset"))
    with pytest.raises(
        AvlabelError, match="built for video labels 'kinetics400' \\(400 classes\\) but 'ucf101' \\(101 classes\\)"
    ):
        load_savld(path, video=load_label_set("ucf101"))
    reordered = LabelSet("audioset", tuple(reversed(load_label_set("audioset").labels)))
    with pytest.raises(AvlabelError, match="audio labels"):
        kinetics_audioset.check_label_sets(audio=reordered)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "does not exist"),
        ("broken.json", "{not json", "corrupt or not a SAVLD"),
        ("other.json", '{"hello": 1}', "not an avlabel SAVLD"),
        ("truncated.txt", None, "does not hold 1 video label"),
        ("edited.txt", None, "content hash mismatch"),
        ("future.json", None, "newer avlabel"),
    ],
)
def test_bad_savld_files(tmp_path, name, content, message):
    path = tmp_path / name
    if name == "truncated.txt":
        text = save_savld(_toy_savld(), tmp_path / "ok.txt").read_text(encoding="utf-8")
        content = text.rsplit("\t", 1)[0] + "\n"
    if name == "edited.txt":
        text = save_savld(_toy_savld(), tmp_path / "ok.txt").read_text(encoding="utf-8")
        content = text.replace('"Bark"', '"Woof"', 1)
    if name == "future.json":
        data = json.loads(save_savld(_toy_savld(), tmp_path / "ok.json").read_text(encoding="utf-8"))
        content = json.dumps({**data, "format_version": 99})
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(AvlabelError, match=message):
        load_savld(path)


def test_unknown_output_suffix_writes_nothing(tmp_path):
    with pytest.raises(AvlabelError, match="end the file name in .json or .txt"):
        save_savld(_toy_savld(), tmp_path / "d.yaml")
    assert list(tmp_path.iterdir()) == []


def test_compare_is_one_for_itself_and_lower_across_backends(kinetics_audioset):
    assert {j for _, j in compare_savld(kinetics_audioset, kinetics_audioset)} == {1.0}
    glove = build_savld(kinetics_audioset.video, kinetics_audioset.audio, k=10, backend="glove")
    overlaps = dict(compare_savld(kinetics_audioset, glove))
    assert 0.0 < np.mean(list(overlaps.values())) < 1.0
    with pytest.raises(AvlabelError, match="built for video labels"):
        compare_savld(kinetics_audioset, _toy_savld())


def test_shipped_default_dictionary_matches_a_fresh_build(kinetics_audioset):
    shipped = load_savld(default_savld_path(), video=load_label_set("kinetics400"), audio=load_label_set("audioset"))
    assert shipped.k == 10 and shipped.metric == "cosine" and shipped.provenance["backend"] == "bert"
    same = (shipped.neighbours == kinetics_audioset.neighbours).all(axis=1)
    # Float noise across CPUs may swap near-tied neighbours; the sets must otherwise agree.
    assert same.mean() > 0.97
    np.testing.assert_allclose(shipped.scores, kinetics_audioset.scores, atol=1e-4)
