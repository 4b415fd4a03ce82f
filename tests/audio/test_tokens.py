"""Audio time tokens: the grid, valid lengths, energies, both embedders' tokens, and extraction into the cache."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from avlabel.audio.ast import AstTagger
from avlabel.audio.cache import AudioCache
from avlabel.audio.embedders import build_embedder
from avlabel.audio.extract import extract_audio
from avlabel.audio.features import AstFilterbank, FilterbankConfig
from avlabel.audio.tokens import TokenGrid
from avlabel.data.manifest import ClipRecord

from ._media import tone


def _features(*waveforms: np.ndarray):
    """Filterbank of 10 s windows holding ``waveforms`` (each zero-padded to 10 s, its length kept)."""
    batch = np.zeros((len(waveforms), 160_000), np.float32)
    for row, waveform in enumerate(waveforms):
        batch[row, : len(waveform)] = waveform
    return AstFilterbank()(batch, [len(waveform) for waveform in waveforms])


def test_ast_base_grid_and_the_valid_length_rule():
    grid = TokenGrid()
    assert grid.count == 101 and grid.to_dict() == {"patch": 16, "stride": 10, "max_length": 1024, "count": 101}
    frames = torch.tensor([0, 7, 8, 17, 18, 998, 1024])
    # Token t is valid when its first 8 of 16 frames are real: 10 t + 8 <= frames.
    assert grid.valid_length(frames).tolist() == [0, 0, 1, 1, 2, 100, 101]
    brute = [sum(10 * t + 8 <= n for t in range(101)) for n in range(1030)]
    assert grid.valid_length(torch.arange(1030)).tolist() == [min(b, 101) for b in brute]
    # A full 10 s window: 998 frames, so token 99 (frames 990-1005) straddles the end with 8 real
    # frames and counts, token 100 (frames 1000-1015) is padding.
    _, num_frames = _features(tone(440, 10.0))
    assert num_frames.tolist() == [998] and grid.valid_length(num_frames).tolist() == [100]


def test_pool_is_the_mean_of_each_token_span():
    grid = TokenGrid(patch=4, stride=3, max_length=14)
    features = torch.randn(2, 14, 5)
    pooled = grid.pool(features)
    assert grid.count == 4 and pooled.shape == (2, 4, 5)
    for t in range(4):
        torch.testing.assert_close(pooled[:, t], features[:, 3 * t : 3 * t + 4].mean(dim=1))


def test_energy_follows_loudness_and_ignores_padding():
    config = FilterbankConfig()
    grid = TokenGrid()
    noise = np.random.default_rng(0).standard_normal(160_000).astype(np.float32)
    features, num_frames = _features(0.01 * noise, 0.1 * noise[:48_000], np.zeros(160_000, np.float32))
    energy = grid.energy(features, num_frames, config)
    assert energy.shape == (3, 101) and energy.dtype == torch.float32
    # +20 dB of the same noise: +2 ln(10) / (2 std) in the normalised units.
    louder = energy[1, :25].mean() - energy[0, :25].mean()
    assert louder.item() == pytest.approx(2 * math.log(10) / (2 * config.std), abs=0.01)
    # A 3 s clip: tokens past its audio hold AST's zero padding, which is not sound.
    assert grid.valid_length(num_frames)[1] == 30
    silence = torch.full((71,), config.silence_energy)
    torch.testing.assert_close(energy[1, 30:], silence)  # token 30 starts at frame 300, past the 298 real ones
    assert (energy[1, :30] > 0).all()  # token 29 (frames 290-305) counts its 8 real frames only
    assert torch.allclose(energy[2], torch.tensor(config.silence_energy, dtype=torch.float32))  # digital silence
    # The padding itself normalises above silence: counted, it would look like sound.
    assert (features[1, 400:] > config.silence_energy + 1).all()


def test_energy_is_a_mean_of_power_not_of_logs():
    config = FilterbankConfig()
    loud_tone = tone(440, 10.0, amplitude=0.1 * math.sqrt(2))  # -20 dBFS RMS, in one or two of 128 bins
    faint_noise = (1e-4 * np.random.default_rng(1).standard_normal(160_000)).astype(np.float32)  # -80 dBFS RMS
    features, num_frames = _features(loud_tone, faint_noise)
    energy = TokenGrid().energy(features, num_frames, config)[:, :100].mean(dim=1)
    assert energy[0] > energy[1] + 1.0  # 60 dB apart: +1.5 in these units
    # A mean of log values would rank them the other way: the tone leaves most bins at the floor.
    assert features[0, :998].mean() < features[1, :998].mean()


def test_logmel_tokens_are_the_filterbank_at_the_token_rate():
    embedder = build_embedder("logmel")
    features, num_frames = _features(tone(440, 10.0), tone(3000, 4.0))
    out = embedder.embed(features, num_frames, tokens=True)
    assert embedder.token_grid == TokenGrid() and embedder.token_dim == 128
    assert out.tokens.shape == (2, 101, 128)
    torch.testing.assert_close(out.tokens, embedder.token_grid.pool(features))
    torch.testing.assert_close(out.embedding, embedder.embed(features, num_frames).embedding)
    assert embedder.embed(features, num_frames).tokens is None


@pytest.fixture(scope="module")
def tagger(tiny_ast_dir):
    return AstTagger.from_pretrained(tiny_ast_dir)


def _records(media, names) -> list[ClipRecord]:
    return [ClipRecord(video_id=name, path=Path(media[name]), label="x", split="train") for name in names]


@pytest.mark.parametrize("embedder_name", ["ast", "logmel"])
def test_extraction_stores_tokens_from_the_same_pass(tmp_path, media, tagger, embedder_name):
    from avlabel.audio.decode import load_windows

    embedder = tagger if embedder_name == "ast" else build_embedder("logmel")
    names = ["tone_wav", "no_audio_mp4", "silence_wav", "onset_m4a"]
    extract_audio(_records(media, names), tmp_path, embedder, num_windows=2, progress=False, tokens=True)
    cache = AudioCache(tmp_path)
    dim = 32 if embedder_name == "ast" else 128
    assert cache.header["tokens"] == {
        "patch": 16,
        "stride": 10,
        "max_length": 1024,
        "count": 101,
        "dim": dim,
        "silence_energy": pytest.approx(FilterbankConfig().silence_energy),
    }
    assert cache.tokens.shape == (8, 101, dim)
    # Windows without audible audio: no valid token, zero tokens, the energy of silence.
    quiet = cache.lookup(["no_audio_mp4"] * 2 + ["silence_wav"] * 2, [0, 1, 0, 1])
    assert not cache.token_length[quiet].any() and not cache.tokens[quiet].any()
    assert np.allclose(cache.token_energy[quiet], cache.header["tokens"]["silence_energy"])
    # The 3 s tone: 298 frames of audio (Kaldi framing), so 30 valid tokens (token 29, frames 290-305,
    # has 8 real frames), in both windows (a clip shorter than a window fills every window).
    rows = cache.lookup(["tone_wav", "tone_wav"], [0, 1])
    assert cache.token_length[rows].tolist() == [30, 30]
    windows = load_windows(media["tone_wav"], num_windows=2)
    features, num_frames = embedder.filterbank(windows.waveforms, windows.lengths)
    expected = embedder.embed(features, num_frames, tokens=True)
    np.testing.assert_allclose(cache.tokens[rows], expected.tokens.numpy(), atol=3e-3, rtol=2e-3)
    np.testing.assert_allclose(cache.embedding[rows], expected.embedding.numpy(), atol=3e-3, rtol=2e-3)
    energy = TokenGrid().energy(features, num_frames, embedder.filterbank.config).numpy()
    np.testing.assert_allclose(cache.token_energy[rows], energy, rtol=1e-6)
    # 20 s file, silent until 12 s: its two 10 s windows (0-10 s, 10-20 s) are silent and then sound.
    onset = cache.lookup(["onset_m4a", "onset_m4a"], [0, 1])
    assert cache.status[onset].tolist() == [3, 0] and cache.token_length[onset].tolist() == [0, 100]
    second = cache.token_energy[onset[1]]
    assert (second[:19] < -1.2).all() and (second[21:100] > 0).all()  # quiet for 2 s, then the tone


def test_workers_give_the_same_tokens(tmp_path, media):
    embedder = build_embedder("logmel")
    records = _records(media, ["tone_wav", "noise_wav", "stereo_mp4", "no_audio_mp4"])
    extract_audio(records, tmp_path / "serial", embedder, workers=0, progress=False, tokens=True)
    extract_audio(records, tmp_path / "parallel", embedder, workers=2, batch_size=2, progress=False, tokens=True)
    serial, parallel = AudioCache(tmp_path / "serial"), AudioCache(tmp_path / "parallel")
    np.testing.assert_array_equal(serial.tokens, parallel.tokens)
    np.testing.assert_array_equal(serial.token_length, parallel.token_length)
    np.testing.assert_array_equal(serial.token_energy, parallel.token_energy)


def test_without_tokens_nothing_token_is_computed_or_written(tmp_path, media):
    extract_audio(_records(media, ["tone_wav"]), tmp_path, build_embedder("logmel"), progress=False)
    cache = AudioCache(tmp_path)
    assert cache.header["version"] == 1 and not cache.has_tokens
    assert sorted(path.name for path in tmp_path.glob("audio_token*")) == []
