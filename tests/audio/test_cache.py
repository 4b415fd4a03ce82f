"""Audio cache store: round trip, row lookup, recovery from torn writes, refusal to mix embedders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avlabel.audio.cache import (
    EMBEDDING,
    HEADER,
    INDEX,
    PROBS,
    STATUS,
    TOKEN_ENERGY,
    TOKEN_LENGTH,
    TOKENS,
    AudioCache,
    AudioCacheWriter,
    TokenRows,
)
from avlabel.errors import AvlabelError

_IDENTITY = {"name": "test", "source": "/somewhere", "fingerprint": "abc", "dim": 4}
_WINDOWS = {"count": 2, "seconds": 10.0, "sample_rate": 16000}
_LABELS = ("a", "b", "c")
_TOKENS = {"patch": 16, "stride": 10, "max_length": 64, "count": 5, "dim": 3, "silence_energy": -1.25}


def _rows(seed: int):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((2, 4)).astype(np.float16),
        rng.random((2, 3)).astype(np.float16),
        np.array([0, 3], np.uint8),
    )


def _writer(directory, identity=_IDENTITY, labels=_LABELS, tokens=None):
    return AudioCacheWriter(directory, identity, 4, labels, _WINDOWS, tokens)


def _token_rows(seed: int) -> TokenRows:
    rng = np.random.default_rng(seed)
    return TokenRows(
        rng.standard_normal((2, 5, 3)).astype(np.float16),
        np.array([4, 0], np.uint16),  # window 1 (status 3, silent) has no valid token
        np.stack([rng.standard_normal(5), np.full(5, -1.25)]).astype(np.float32),
    )


def test_round_trip_and_lookup(tmp_path):
    with _writer(tmp_path) as writer:
        for index, video_id in enumerate(["v0", "v1", "v2"]):
            writer.append(video_id, *_rows(index))
            writer.commit()
    cache = AudioCache(tmp_path)
    assert len(cache) == 6 and cache.num_windows == 2 and cache.dim == 4
    assert cache.video_ids == ["v0", "v0", "v1", "v1", "v2", "v2"] and cache.windows.tolist() == [0, 1] * 3
    embedding, probs, _ = _rows(1)
    np.testing.assert_array_equal(cache.embedding[2:4], embedding)
    np.testing.assert_array_equal(cache.probs[2:4], probs)
    assert cache.status.tolist() == [0, 3] * 3 and cache.has_audio.tolist() == [True, False] * 3
    assert isinstance(cache.embedding, np.memmap)
    assert cache.lookup(["v2", "missing", "v0"], window=1).tolist() == [5, -1, 1]
    assert cache.lookup(["v1", "v1"], window=[0, 1]).tolist() == [2, 3]
    with pytest.raises(ValueError, match="window"):
        cache.lookup(["v1"], window=2)
    vectors, has_audio = cache.read([2, -1, 3])
    assert vectors.dtype == np.float32 and has_audio.tolist() == [True, False, False]
    np.testing.assert_array_equal(vectors[0], embedding[0].astype(np.float32))
    assert not vectors[1].any()
    assert "v1" in cache and "v9" not in cache


def test_uncommitted_rows_are_invisible_and_dropped(tmp_path):
    writer = _writer(tmp_path)
    writer.append("v0", *_rows(0))
    writer.commit()
    writer.append("v1", *_rows(1))  # appended but never committed: the process "dies" here
    for handle in writer._handles.values():
        handle.flush()
    assert len(AudioCache(tmp_path)) == 2  # readers see the committed rows only
    writer._lock.close()  # a killed process releases its lock
    # A torn tail: half a row of garbage on every file, as a kill in mid-write leaves.
    for name in (EMBEDDING, PROBS, STATUS, INDEX):
        with open(tmp_path / name, "ab") as handle:
            handle.write(b"\x07" * 3)
    with _writer(tmp_path) as resumed:
        assert resumed.done == {"v0"}
        resumed.append("v1", *_rows(1))
    cache = AudioCache(tmp_path)
    assert cache.video_ids == ["v0", "v0", "v1", "v1"]
    np.testing.assert_array_equal(cache.embedding[2:], _rows(1)[0])
    assert (tmp_path / EMBEDDING).stat().st_size == 4 * 4 * 2


def test_refuses_a_different_embedder_but_not_a_moved_checkpoint(tmp_path):
    with _writer(tmp_path) as writer:
        writer.append("v0", *_rows(0))
    with _writer(tmp_path, identity={**_IDENTITY, "source": "/moved/elsewhere"}) as writer:
        assert writer.done == {"v0"}
    with pytest.raises(AvlabelError, match="different embedder"):
        _writer(tmp_path, identity={**_IDENTITY, "fingerprint": "other"})
    with pytest.raises(AvlabelError, match="different labels_sha256"):
        _writer(tmp_path, labels=("c", "b", "a"))


def test_one_writer_at_a_time(tmp_path):
    with _writer(tmp_path), pytest.raises(AvlabelError, match="another process is writing"):
        _writer(tmp_path)


def test_reader_errors(tmp_path):
    with pytest.raises(AvlabelError, match="no audio cache"):
        AudioCache(tmp_path)
    (tmp_path / HEADER).write_text("{not json")
    with pytest.raises(AvlabelError, match="not valid JSON"):
        AudioCache(tmp_path)


def test_rejects_video_ids_that_would_break_the_index(tmp_path):
    with _writer(tmp_path) as writer, pytest.raises(AvlabelError, match="tab or line break"):
        writer.append("bad\tid", *_rows(0))


def test_tokens_round_trip_and_read_as_the_interface_wants(tmp_path):
    with _writer(tmp_path, tokens=_TOKENS) as writer:
        for index, video_id in enumerate(["v0", "v1"]):
            writer.append(video_id, *_rows(index), _token_rows(index))
    cache = AudioCache(tmp_path)
    assert cache.header["version"] == 2 and cache.header["tokens"] == _TOKENS and cache.has_tokens
    assert cache.tokens.shape == (4, 5, 3) and isinstance(cache.tokens, np.memmap)
    np.testing.assert_array_equal(cache.tokens[2:], _token_rows(1).tokens)
    assert cache.token_length.tolist() == [4, 0, 4, 0]
    tokens, valid, energy = cache.read_tokens([2, -1, 3])
    assert tokens.dtype == np.float32 and tokens.shape == (3, 5, 3) and valid.dtype == bool
    np.testing.assert_array_equal(tokens[0], _token_rows(1).tokens[0].astype(np.float32))
    assert valid.tolist() == [[True] * 4 + [False], [False] * 5, [False] * 5]  # a prefix of length 4; none
    assert not tokens[1].any() and (energy[1] == -1.25).all()  # a clip missing from the cache: silence
    np.testing.assert_array_equal(energy[0], _token_rows(1).energy[0])
    for name, row_bytes in ((TOKENS, 5 * 3 * 2), (TOKEN_LENGTH, 2), (TOKEN_ENERGY, 5 * 4)):
        assert (tmp_path / name).stat().st_size == 4 * row_bytes


def test_a_cache_without_tokens_is_version_1_and_refuses_token_readers(tmp_path):
    with _writer(tmp_path) as writer:
        writer.append("v0", *_rows(0))
    cache = AudioCache(tmp_path)
    assert cache.header["version"] == 1 and "tokens" not in cache.header and not cache.has_tokens
    assert cache.tokens is None and not (tmp_path / TOKENS).exists()
    with pytest.raises(
        AvlabelError, match="holds no audio tokens .* but model 'x' reads them; .* avlabel targets --tokens"
    ):
        cache.check_tokens("model 'x' reads them")
    with pytest.raises(AvlabelError, match="holds no audio tokens"):
        cache.read_tokens([0])


def test_a_cache_neither_gains_nor_loses_tokens(tmp_path):
    with _writer(tmp_path / "plain") as writer:
        writer.append("v0", *_rows(0))
    with pytest.raises(AvlabelError, match="holds no audio tokens, so --tokens cannot add to it"):
        _writer(tmp_path / "plain", tokens=_TOKENS)
    with _writer(tmp_path / "tokens", tokens=_TOKENS) as writer:
        writer.append("v0", *_rows(0), _token_rows(0))
    with pytest.raises(AvlabelError, match="holds audio tokens, so --no-tokens cannot add to it"):
        _writer(tmp_path / "tokens")
    with pytest.raises(AvlabelError, match="different tokens"):
        _writer(tmp_path / "tokens", tokens={**_TOKENS, "stride": 8})


def test_torn_token_files_are_cut_back_on_resume(tmp_path):
    writer = _writer(tmp_path, tokens=_TOKENS)
    writer.append("v0", *_rows(0), _token_rows(0))
    writer.commit()
    writer.append("v1", *_rows(1), _token_rows(1))  # never committed
    for handle in writer._handles.values():
        handle.flush()
    writer._lock.close()
    for name in (TOKENS, TOKEN_LENGTH, TOKEN_ENERGY):
        with open(tmp_path / name, "ab") as handle:
            handle.write(b"\x07" * 3)
    with _writer(tmp_path, tokens=_TOKENS) as resumed:
        assert resumed.done == {"v0"}
        resumed.append("v1", *_rows(1), _token_rows(1))
    cache = AudioCache(tmp_path)
    np.testing.assert_array_equal(cache.tokens[2:], _token_rows(1).tokens)
    np.testing.assert_array_equal(cache.token_energy[2:], _token_rows(1).energy)


def test_unknown_versions_are_refused(tmp_path):
    with _writer(tmp_path) as writer:
        writer.append("v0", *_rows(0))
    header = json.loads((tmp_path / HEADER).read_text())
    (tmp_path / HEADER).write_text(json.dumps({**header, "version": 3}))
    with pytest.raises(AvlabelError, match="format version 3, which this avlabel cannot read"):
        AudioCache(tmp_path)
    (tmp_path / HEADER).write_text(json.dumps({**header, "version": 2}))  # version 2 without its tokens section
    with pytest.raises(AvlabelError, match=r"is damaged \(format version 2 without a tokens section\)"):
        AudioCache(tmp_path)


@pytest.mark.parametrize("tokens", [None, _TOKENS], ids=["without-tokens", "with-tokens"])
def test_copying_videos_carries_every_array_the_cache_lists(tmp_path, tokens):
    # What the merge of a split's shard caches does: a video copied from a cache with the same
    # identity lands in every file of `cache_arrays`, byte for byte as if it had been appended.
    from avlabel.audio.cache import cache_arrays

    appended, source, copied = tmp_path / "appended", tmp_path / "source", tmp_path / "copied"
    for directory, order in ((appended, ["v1", "v0"]), (source, ["v0", "v1"])):
        with _writer(directory, tokens=tokens) as writer:
            for video_id in order:
                seed = int(video_id[1])
                writer.append(video_id, *_rows(seed), _token_rows(seed) if tokens else None)
    cache = AudioCache(source)
    assert set(cache.arrays) == set(cache_arrays(cache.header))
    assert (TOKENS in cache.arrays) == (tokens is not None)
    with AudioCacheWriter.with_identity(copied, cache.header) as writer:
        for video_id in ["v1", "v0"]:
            writer.copy_video(cache, video_id)
    for name in [*cache_arrays(cache.header), INDEX, HEADER]:
        assert (copied / name).read_bytes() == (appended / name).read_bytes(), name
