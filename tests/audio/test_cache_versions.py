"""Caches written before audio tokens existed (format version 1): still read and extended, refused for tokens."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from avlabel.audio.cache import HEADER, AudioCache
from avlabel.audio.embedders import build_embedder
from avlabel.audio.extract import extract_audio
from avlabel.audio.targets import RelevanceTargets
from avlabel.data.manifest import ClipRecord
from avlabel.errors import AvlabelError

# Written by avlabel at commit 1aefc90 (tests/audio/fixtures/make_cache_v1.py): three clips --
# a 3 s tone, digital silence, a video without audio -- two windows each, logmel embedder.
V1 = Path(__file__).parent / "fixtures" / "cache_v1"


def test_a_version_1_cache_reads_as_before():
    cache = AudioCache(V1)
    assert cache.header["version"] == 1 and not cache.has_tokens and cache.tokens is None
    assert cache.video_ids == ["v1", "v1", "v2", "v2", "v3", "v3"] and cache.dim == 256
    assert cache.status.tolist() == [0, 0, 3, 3, 1, 1]
    embedding, has_audio = cache.read(cache.lookup(["v1", "v2", "v3"]))
    assert has_audio.tolist() == [True, False, False] and embedding[0].any() and not embedding[1:].any()
    targets = RelevanceTargets.load(V1)
    assert targets.for_items(cache.lookup(["v1", "v2"])).tolist() == [1.0, 0.0]


def test_a_version_1_cache_refuses_token_readers_with_the_rebuild_command():
    with pytest.raises(AvlabelError) as error:
        AudioCache(V1).check_tokens("model 'avt_tiny' reads audio tokens (AVT)")
    message = str(error.value)
    assert "holds no audio tokens" in message and "avlabel targets --tokens ... -o NEW_DIR" in message
    assert "\n" not in message


def test_a_version_1_cache_is_extended_in_its_own_format(tmp_path, media):
    cache_dir = Path(shutil.copytree(V1, tmp_path / "cache"))
    record = ClipRecord(video_id="v4", path=Path(media["noise_wav"]), label="whistling", split="train")
    summary = extract_audio([record], cache_dir, build_embedder("logmel"), num_windows=2, progress=False)
    assert summary.computed == 1
    cache = AudioCache(cache_dir)
    assert cache.header["version"] == 1 and "tokens" not in json.loads((cache_dir / HEADER).read_text())
    assert cache.video_ids[-2:] == ["v4", "v4"] and cache.status[-2:].tolist() == [0, 0]
    np.testing.assert_array_equal(cache.embedding[:6], AudioCache(V1).embedding)
    with pytest.raises(AvlabelError, match="holds no audio tokens, so --tokens cannot add to it"):
        extract_audio([record], cache_dir, build_embedder("logmel"), num_windows=2, progress=False, tokens=True)
