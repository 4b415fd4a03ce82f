"""glove and word2vec backends: every accepted vectors format, OOV handling and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import Word2Vec

from avlabel.embed import create_embedder, embed_label_set
from avlabel.errors import AvlabelError
from avlabel.labels import LabelSet

_SENTENCES = [
    ["drum", "beat", "music", "rhythm", "drum", "percussion"],
    ["dog", "bark", "animal", "dog", "growl"],
    ["clap", "applause", "crowd", "cheer", "clap"],
    ["guitar", "music", "string", "strum", "guitar"],
] * 20


@pytest.fixture(scope="module")
def tiny_word2vec():
    """A real (tiny) gensim Word2Vec, trained deterministically on one worker."""
    return Word2Vec(_SENTENCES, vector_size=8, window=2, min_count=1, workers=1, seed=0, epochs=5).wv


def _check_vectors(embedder, keyed_vectors):
    vectors, unknown = embedder.embed(["drum", "dog bark", "zzyzx"])
    np.testing.assert_allclose(vectors[0], keyed_vectors["drum"], rtol=1e-6)
    np.testing.assert_allclose(vectors[1], (keyed_vectors["dog"] + keyed_vectors["bark"]) / 2, rtol=1e-5)
    assert np.isnan(vectors[2]).all()
    assert unknown == [[], [], ["zzyzx"]]


def test_word2vec_binary_file_goes_through_the_user_path(tmp_path, tiny_word2vec):
    path = tmp_path / "tiny.bin"
    tiny_word2vec.save_word2vec_format(str(path), binary=True)
    embedder = create_embedder("word2vec", vectors=str(path))
    assert embedder.model_name == str(path.resolve())
    _check_vectors(embedder, tiny_word2vec)


def test_word2vec_text_file(tmp_path, tiny_word2vec):
    path = tmp_path / "tiny.txt"
    tiny_word2vec.save_word2vec_format(str(path), binary=False)
    _check_vectors(create_embedder("word2vec", vectors=str(path)), tiny_word2vec)


def test_glove_text_file_without_header(tmp_path, tiny_word2vec):
    path = tmp_path / "glove.tiny.txt"
    lines = [word + " " + " ".join(f"{x:.6f}" for x in tiny_word2vec[word]) for word in tiny_word2vec.index_to_key]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    embedder = create_embedder("glove", vectors=str(path))
    vectors, _ = embedder.embed(["guitar"])
    np.testing.assert_allclose(vectors[0], tiny_word2vec["guitar"], atol=1e-6)


def test_gensim_keyed_vectors_and_full_model_saves_load_when_trusted(tmp_path, tiny_word2vec):
    kv_path = tmp_path / "tiny.kv"
    tiny_word2vec.save(str(kv_path))
    _check_vectors(create_embedder("glove", vectors=str(kv_path), trust_vectors=True), tiny_word2vec)
    model_path = tmp_path / "tiny.model"
    Word2Vec(_SENTENCES, vector_size=8, min_count=1, workers=1, seed=0, epochs=1).save(str(model_path))
    vectors, _ = create_embedder("word2vec", vectors=str(model_path), trust_vectors=True).embed(["dog"])
    assert vectors.shape == (1, 8) and not np.isnan(vectors).any()


class _Payload:
    """What a crafted pickle does: pickle calls ``os.system(command)`` while loading it."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


@pytest.mark.parametrize("suffix", [".kv", ".model", ".wordvectors", ".pkl"])
def test_a_crafted_pickle_never_runs_without_trust_vectors(tmp_path, suffix):
    import pickle

    marker = tmp_path / "payload-ran"
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(pickle.dumps(_Payload(f"touch {marker}")))
    with pytest.raises(AvlabelError, match="a pickle that runs code .* --trust-vectors .*save_word2vec_format"):
        create_embedder("glove", vectors=str(path)).embed(["drum"])
    with pytest.raises(AvlabelError, match="--trust-vectors"):
        create_embedder("word2vec", vectors=str(path))
    assert not marker.exists()
    # The payload is real: opting in runs it (which is what the flag's help warns about).
    with pytest.raises(AvlabelError):
        create_embedder("glove", vectors=str(path), trust_vectors=True).embed(["drum"])
    assert marker.exists()


def test_numpy_matrix_with_a_vocabulary_file(tmp_path, tiny_word2vec):
    np.save(tmp_path / "tiny.npy", tiny_word2vec.vectors)
    (tmp_path / "tiny.vocab.txt").write_text("\n".join(tiny_word2vec.index_to_key) + "\n", encoding="utf-8")
    _check_vectors(create_embedder("word2vec", vectors=str(tmp_path / "tiny.npy")), tiny_word2vec)


def test_numpy_vectors_without_vocabulary_or_holding_objects_are_refused(tmp_path):
    np.save(tmp_path / "lonely.npy", np.zeros((2, 3), np.float32))
    with pytest.raises(AvlabelError, match="needs its words, one per row, in .*lonely.vocab.txt"):
        create_embedder("glove", vectors=str(tmp_path / "lonely.npy"))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (tmp_path / "objects.vocab.txt").write_text("a\nb\n")
    with pytest.raises(AvlabelError, match="cannot read word vectors .*objects.npy"):
        create_embedder("glove", vectors=str(tmp_path / "objects.npy")).embed(["a"])
    (tmp_path / "short.vocab.txt").write_text("a\n")
    np.save(tmp_path / "short.npy", np.zeros((2, 3), np.float32))
    with pytest.raises(AvlabelError, match=r"shape \(2, 3\) for 1 words"):
        create_embedder("glove", vectors=str(tmp_path / "short.npy")).embed(["a"])


def test_bundled_glove_knows_kinetics_words_and_lookups_fall_back_to_stems_and_compounds():
    embedder = create_embedder("glove")
    vectors, unknown = embedder.embed(["playing drums", "barbequing", "deadlifting", "situp", "caterwaul"])
    assert vectors.shape == (5, 50)
    assert not np.isnan(vectors[:4]).any()
    assert unknown[:4] == [[], [], [], []]
    assert np.isnan(vectors[4]).all() and unknown[4] == ["caterwaul"]


def test_semantics_of_bundled_glove():
    embedder = create_embedder("glove")
    vectors, _ = embedder.embed(["drum", "percussion", "banana"])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2]


def test_label_set_embedding_reports_unknown_words(tmp_path, tiny_word2vec):
    path = tmp_path / "tiny.bin"
    tiny_word2vec.save_word2vec_format(str(path), binary=True)
    embedder = create_embedder("word2vec", vectors=str(path))
    labels = LabelSet("toy", ("Drum, zither", "qwerty"))
    embedded = embed_label_set(labels, embedder)
    assert embedded.unknown_words == {"Drum, zither": ["zither"], "qwerty": ["qwerty"]}
    assert embedded.without_vector == ["qwerty"]
    np.testing.assert_allclose(embedded.vectors[0], tiny_word2vec["drum"], rtol=1e-6)


def test_word2vec_without_vectors_says_how_to_supply_them():
    with pytest.raises(AvlabelError, match="no bundled vectors; pass --vectors PATH .* word2vec-google-news-300"):
        create_embedder("word2vec")


def test_missing_vectors_file(tmp_path):
    with pytest.raises(AvlabelError, match="does not exist"):
        create_embedder("glove", vectors=str(tmp_path / "nope.bin"))


def test_unreadable_vectors_file_fails_on_first_use_with_one_message(tmp_path):
    path = tmp_path / "broken.bin"
    path.write_bytes(b"3 8\n\x00\x01garbage")
    embedder = create_embedder("word2vec", vectors=str(path))
    with pytest.raises(AvlabelError, match="cannot read word vectors"):
        embedder.embed(["drum"])


def test_gensim_data_name_needs_trust_vectors():
    with pytest.raises(
        AvlabelError, match="gensim-data download, for which gensim downloads a Python module and runs it"
    ):
        create_embedder("word2vec", vectors="word2vec-google-news-300")


def test_gensim_data_name_when_offline(monkeypatch):
    import gensim.downloader

    def offline(name):
        raise ConnectionError("no network")

    monkeypatch.setattr(gensim.downloader, "load", offline)
    embedder = create_embedder("word2vec", vectors="word2vec-google-news-300", trust_vectors=True)
    assert embedder.model_name == "gensim-data:word2vec-google-news-300"
    with pytest.raises(
        AvlabelError, match="cannot fetch gensim-data vectors 'word2vec-google-news-300' \\(no network\\)"
    ):
        embedder.embed(["drum"])


def test_backend_options_are_checked():
    with pytest.raises(AvlabelError, match="unknown backend 'elmo'; choose one of bert, glove, word2vec"):
        create_embedder("elmo")
    with pytest.raises(AvlabelError, match="--model is for the bert backend"):
        create_embedder("glove", model="bert-base-uncased")
    with pytest.raises(AvlabelError, match="--vectors is for the glove and word2vec backends"):
        create_embedder("bert", vectors="x.bin")
    with pytest.raises(AvlabelError, match="--trust-vectors is for the glove and word2vec backends"):
        create_embedder("bert", trust_vectors=True)
