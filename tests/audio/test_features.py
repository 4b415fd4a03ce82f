"""AST filterbank: pinned against a recorded slice, batched torch path equal to transformers' extractor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avlabel.audio.features import AstFilterbank, FilterbankConfig
from avlabel.errors import AvlabelError

_ROWS = [0, 1, 100, 197, 198]  # frames: start, middle, last with audio, first of AST's padding
_COLS = list(range(0, 128, 16))
# transformers 5.23 ASTFeatureExtractor (NumPy Kaldi path) on _fixed_waveform(), recorded once:
# a change here means AST would see different inputs than it was trained on.
_RECORDED = torch.tensor(
    [
        [-0.66797, -0.51441, -0.60503, 0.16636, -1.27759, -1.04117, -1.27759, -0.90424],
        [-0.56246, -0.44334, -0.60476, 0.16641, -1.27759, -1.02318, -1.27759, -0.90467],
        [-0.84809, -0.45184, -0.61676, 0.15916, -1.27759, -1.04311, -1.27759, -0.90421],
        [-0.88171, -0.45097, -0.60475, 0.16654, 0.65088, -1.01517, -1.27759, -0.90463],
        [0.46703, 0.46703, 0.46703, 0.46703, 0.46703, 0.46703, 0.46703, 0.46703],
    ]
)


def _fixed_waveform() -> np.ndarray:
    """2 s of tones and a chirp: deterministic on every platform (no random generator involved)."""
    t = np.arange(32_000) / 16_000
    parts = [
        0.25 * np.sin(2 * np.pi * 440 * t),
        0.1 * np.sin(2 * np.pi * 1250 * t),
        0.05 * np.sin(2 * np.pi * (200 * t + 400 * t * t)),
    ]
    parts += [0.02 * np.sin(2 * np.pi * f * t) for f in (3100, 5300, 7100)]
    return np.sum(parts, axis=0).astype(np.float32)


def test_transformers_extractor_matches_the_recorded_features():
    extractor = FilterbankConfig().to_extractor()
    features = extractor(_fixed_waveform(), sampling_rate=16_000, return_tensors="pt")["input_values"][0]
    assert features.shape == (1024, 128)
    torch.testing.assert_close(features[_ROWS][:, _COLS], _RECORDED, atol=1e-3, rtol=0)


@pytest.mark.parametrize("backend", ["torch", "transformers"])
def test_filterbank_backends_match_the_recorded_features(backend):
    features, num_frames = AstFilterbank(backend=backend)(_fixed_waveform()[None], [32_000])
    assert features.shape == (1, 1024, 128) and features.dtype == torch.float32
    assert num_frames.tolist() == [198]  # 1 + (32000 - 400) // 160
    torch.testing.assert_close(features[0, _ROWS][:, _COLS], _RECORDED, atol=1e-3, rtol=0)


def test_batched_torch_path_equals_the_reference_for_every_length():
    rng = np.random.default_rng(0)
    batch = np.zeros((4, 160_000), np.float32)
    lengths = [160_000, 50_000, 401, 200]  # full 10 s, short, one frame, less than a frame
    for row, length in enumerate(lengths):
        batch[row, :length] = 0.1 * rng.standard_normal(length) + 0.3 * np.sin(np.arange(length) * 0.2)
    fast, fast_frames = AstFilterbank(backend="torch")(batch, lengths)
    reference, reference_frames = AstFilterbank(backend="transformers")(batch, lengths)
    assert fast_frames.tolist() == reference_frames.tolist() == [998, 311, 1, 0]
    torch.testing.assert_close(fast, reference, atol=1e-3, rtol=0)
    padding = (0 - -4.2677393) / (2 * 4.5689974)  # AST pads the log-mel matrix with zeros, then normalises
    torch.testing.assert_close(fast[1, 311:], torch.full((1024 - 311, 128), padding))
    torch.testing.assert_close(fast[3], torch.full((1024, 128), padding))


def test_config_follows_the_extractor():
    extractor = FilterbankConfig(max_length=512, mean=-5.0).to_extractor()
    config = FilterbankConfig.from_extractor(extractor)
    assert config.max_length == 512 and config.mean == -5.0 and config.num_mel_bins == 128
    features, _ = AstFilterbank(config)(_fixed_waveform()[None], [32_000])
    assert features.shape == (1, 512, 128)


def test_unknown_backend():
    with pytest.raises(AvlabelError, match="choose one of torch, transformers"):
        AstFilterbank(backend="kaldi")
