"""Filling the cache from a manifest: bad items, no-audio rows, workers, growth, kill -9 and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from avlabel.audio.ast import AstTagger
from avlabel.audio.cache import BAD_ITEMS, HEADER, AudioCache
from avlabel.audio.embedders import build_embedder
from avlabel.audio.extract import extract_audio
from avlabel.data.manifest import ClipRecord, write_manifest
from avlabel.errors import AvlabelError

_PLAN = ["tone_wav", "noise_wav", "stereo_mp4", "no_audio_mp4", "garbage_mp4", "silence_wav", "onset_m4a"]


def _records(media, count: int) -> list[ClipRecord]:
    """``count`` clips cycling through the media files (same file, different video ids)."""
    return [
        ClipRecord(
            video_id=f"clip{i:03d}", path=Path(media[_PLAN[i % len(_PLAN)]]), label="playing drums", split="train"
        )
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def tagger(tiny_ast_dir):
    return AstTagger.from_pretrained(tiny_ast_dir)


def test_extract_records_statuses_and_skips_bad_items(tmp_path, media, tagger):
    records = _records(media, 7)
    summary = extract_audio(records, tmp_path, tagger, batch_size=4, progress=False)
    assert (summary.items, summary.cached, summary.computed) == (7, 0, 6)
    assert [bad[0] for bad in summary.bad] == ["clip004"] and "corrupt" in summary.bad[0][2]
    assert "clip004\t" in (tmp_path / BAD_ITEMS).read_text()
    cache = AudioCache(tmp_path)
    assert "clip004" not in cache and cache.lookup(["clip004"]).tolist() == [-1]
    assert cache.status.tolist() == [0, 0, 0, 1, 3, 0]  # no audio stream, silence
    no_audio = cache.lookup(["clip003", "clip005"])
    assert not cache.embedding[no_audio].any() and not cache.probs[no_audio].any()
    assert cache.embedding[0].any() and cache.probs[0].min() > 0 and cache.probs[0].max() < 1
    # Same rows as the tagger computes directly (fp16 storage).
    embedding, probs, _ = tagger.tag(*_first_window(media["tone_wav"]))
    np.testing.assert_allclose(cache.embedding[0], embedding[0].numpy(), atol=2e-3, rtol=2e-3)
    np.testing.assert_allclose(cache.probs[0], probs[0].numpy(), atol=1e-3)


def _first_window(path):
    from avlabel.audio.decode import load_windows

    windows = load_windows(path)
    return windows.waveforms, windows.lengths


def test_grown_manifest_only_computes_new_items(tmp_path, media, tagger):
    extract_audio(_records(media, 3), tmp_path, tagger, progress=False)
    before = np.array(AudioCache(tmp_path).embedding)
    summary = extract_audio(_records(media, 6), tmp_path, tagger, progress=False)
    assert (summary.cached, summary.computed) == (3, 2) and len(summary.bad) == 1
    cache = AudioCache(tmp_path)
    assert len(cache) == 5
    np.testing.assert_array_equal(cache.embedding[:3], before)


def test_worker_processes_give_the_same_rows(tmp_path, media, tagger):
    records = _records(media, 4)
    extract_audio(records, tmp_path / "serial", tagger, workers=0, progress=False)
    extract_audio(records, tmp_path / "parallel", tagger, workers=2, batch_size=2, progress=False)
    serial, parallel = AudioCache(tmp_path / "serial"), AudioCache(tmp_path / "parallel")
    assert serial.video_ids == parallel.video_ids
    np.testing.assert_allclose(serial.embedding, parallel.embedding, atol=2e-3)
    np.testing.assert_array_equal(serial.status, parallel.status)


def test_multiple_windows_and_the_logmel_embedder(tmp_path, media):
    embedder = build_embedder("logmel")
    summary = extract_audio(_records(media, 7)[2:4], tmp_path, embedder, num_windows=3, progress=False)
    assert summary.computed == 2
    cache = AudioCache(tmp_path)
    assert cache.num_windows == 3 and cache.dim == 256 and cache.probs is None
    assert cache.windows.tolist() == [0, 1, 2, 0, 1, 2]
    assert cache.status.tolist() == [0, 0, 0, 1, 1, 1]
    assert cache.header["embedder"]["name"] == "logmel"


def test_logmel_ignores_padding(media):
    from avlabel.audio.features import AstFilterbank

    from ._media import tone

    embedder = build_embedder("logmel")
    long, short = tone(440, 10.0), np.zeros(160_000, np.float32)
    short[:48_000] = tone(440, 3.0)
    features, num_frames = AstFilterbank()(np.stack([long, short]), [160_000, 48_000])
    embedding, probs, _ = embedder.embed(features, num_frames)
    assert embedding.shape == (2, 256) and probs is None
    np.testing.assert_allclose(embedding[0].numpy(), embedding[1].numpy(), atol=0.02)


def test_embedder_table_errors(tiny_ast_dir):
    with pytest.raises(AvlabelError, match="choose one of ast, logmel"):
        build_embedder("vggish")
    with pytest.raises(AvlabelError, match="--ast applies to the 'ast' embedder only"):
        build_embedder("logmel", ast=tiny_ast_dir)


def test_duplicate_video_ids_must_agree(tmp_path, media, tagger):
    records = _records(media, 2)
    clash = ClipRecord(video_id="clip000", path=Path(media["noise_wav"]), label="x", split="train")
    with pytest.raises(AvlabelError, match="appears twice"):
        extract_audio([*records, clash], tmp_path, tagger, progress=False)


_SLOW_EXTRACT = """
import sys, time
from avlabel.audio.embedders import build_embedder
from avlabel.audio.extract import extract_audio
from avlabel.data.manifest import read_manifest

embedder = build_embedder("logmel")  # the cache's crash safety does not depend on the embedder
embed = embedder.embed
def slow_embed(*args, **kwargs):  # slow enough for the test to kill it in the middle
    time.sleep(0.15)
    return embed(*args, **kwargs)
embedder.embed = slow_embed
records = read_manifest(sys.argv[1], check_files=False).records
extract_audio(records, sys.argv[2], embedder, batch_size=1, progress=False, tokens=True)
"""


def test_kill_9_in_the_middle_then_resume(tmp_path, media):
    records = _records(media, 14)
    manifest = write_manifest(records, tmp_path / "manifest.csv")
    script = tmp_path / "slow_extract.py"
    script.write_text(_SLOW_EXTRACT)
    output = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen([sys.executable, str(script), str(manifest), str(output)], env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            header = output / HEADER
            if header.is_file() and json.loads(header.read_text())["rows"] >= 3:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the extraction finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    committed = len(AudioCache(output))
    assert 3 <= committed < 12

    embedder = build_embedder("logmel")
    summary = extract_audio(records, output, embedder, progress=False)  # tokens: as the cache has them
    assert summary.cached == committed and summary.cached + summary.computed == 12 and len(summary.bad) == 2
    reference = extract_audio(records, tmp_path / "reference", embedder, progress=False, tokens=True)
    assert reference.computed == 12
    resumed, uninterrupted = AudioCache(output), AudioCache(tmp_path / "reference")
    assert resumed.video_ids == uninterrupted.video_ids  # nothing lost, nothing duplicated, same order
    assert len(set(resumed.video_ids)) == len(resumed)
    np.testing.assert_allclose(resumed.embedding, uninterrupted.embedding, atol=2e-3)
    np.testing.assert_array_equal(resumed.status, uninterrupted.status)
    np.testing.assert_allclose(resumed.tokens, uninterrupted.tokens, atol=2e-3)
    np.testing.assert_array_equal(resumed.token_length, uninterrupted.token_length)
    np.testing.assert_allclose(resumed.token_energy, uninterrupted.token_energy, atol=1e-5)
