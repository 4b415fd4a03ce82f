"""The on-disk embedding cache: hits skip the model, keys separate models, damage is survived."""

from __future__ import annotations

import numpy as np

from avlabel.embed import embed_label_set
from avlabel.embed.cache import EmbeddingCache, path_fingerprint
from avlabel.labels import LabelSet


class _CountingEmbedder:
    """A deterministic TextEmbedder that records what it was asked to embed."""

    backend = "glove"
    model_name = "counting"

    def __init__(self, model_key: str = "counting-v1") -> None:
        self.model_key = model_key
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        vectors = np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)
        return vectors, [["zz"] if "zz" in t else [] for t in texts]


LABELS = LabelSet("toy", ("Chirp, tweet", "dog zz", "playing_drums"))


def test_second_embedding_is_served_from_disk():
    embedder = _CountingEmbedder()
    first = embed_label_set(LABELS, embedder)
    assert embedder.calls == [["chirp", "tweet", "dog zz", "playing drums"]]
    again = _CountingEmbedder()
    second = embed_label_set(LABELS, again)
    assert again.calls == []
    np.testing.assert_array_equal(first.vectors, second.vectors)
    assert second.unknown_words == {"dog zz": ["zz"]}
    # A label's vector is the mean of its synonyms' vectors.
    np.testing.assert_allclose(first.vectors[0], [(5 + 5) / 2, 0, 1])


def test_only_new_texts_are_embedded_and_templates_are_part_of_the_key():
    embed_label_set(LABELS, _CountingEmbedder())
    embedder = _CountingEmbedder()
    embed_label_set(LabelSet("more", ("dog zz", "cat")), embedder)
    assert embedder.calls == [["cat"]]
    embed_label_set(LabelSet("more", ("cat",)), embedder, template="the sound of {}")
    assert embedder.calls[-1] == ["the sound of cat"]


def test_cache_disabled_and_model_key_change_both_recompute():
    embed_label_set(LABELS, _CountingEmbedder())
    uncached = _CountingEmbedder()
    embed_label_set(LABELS, uncached, use_cache=False)
    assert len(uncached.calls) == 1
    other_model = _CountingEmbedder(model_key="counting-v2")
    embed_label_set(LABELS, other_model)
    assert len(other_model.calls) == 1


def test_corrupt_cache_file_is_a_miss_and_gets_rewritten():
    embedder = _CountingEmbedder()
    embed_label_set(LABELS, embedder)
    cache_file = EmbeddingCache(embedder.backend, embedder.model_key).path
    cache_file.write_bytes(b"not a zip file")
    fresh = _CountingEmbedder()
    embed_label_set(LABELS, fresh)
    assert len(fresh.calls) == 1
    assert EmbeddingCache(embedder.backend, embedder.model_key).missing(["chirp"]) == []


def test_path_fingerprint_follows_file_changes(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"1234")
    before = path_fingerprint(model)
    assert path_fingerprint(model) == before
    (model / "weights.bin").write_bytes(b"12345")
    assert path_fingerprint(model) != before


# One `avlabel savld`-like build: embeds its label set through the shared on-disk cache. The
# embedder signals that this process has loaded the cache, then waits until the other process
# has too, so both hold the same (empty) view of the file before either writes.
_BUILD = """
import sys, time
from pathlib import Path

import numpy as np

from avlabel.embed import embed_label_set
from avlabel.labels import LabelSet


class Embedder:
    backend, model_name, model_key = "glove", "shared", "shared-v1"

    def embed(self, texts):
        Path(sys.argv[2]).touch()
        deadline = time.monotonic() + 60
        while not Path(sys.argv[3]).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], np.float32), [[] for _ in texts]


embed_label_set(LabelSet("own", tuple(sys.argv[1].split(","))), Embedder())
"""


def test_two_concurrent_builds_merge_their_entries_instead_of_the_last_writer_winning(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "build.py"
    script.write_text(_BUILD)
    ready = [tmp_path / "first.ready", tmp_path / "second.ready"]
    labels = ["dog,cat,bird", "drum,guitar,cat"]
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), labels[i], str(ready[i]), str(ready[1 - i])],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for process in processes:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors
    cache = EmbeddingCache("glove", "shared-v1")
    assert cache.missing(["dog", "cat", "bird", "drum", "guitar"]) == []
    vectors, _ = cache.get(["dog", "guitar"])
    np.testing.assert_array_equal(vectors, [[3, 0, 1], [6, 1, 1]])
