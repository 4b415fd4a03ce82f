"""write_clip produces real, readable, deterministic files in every supported container."""

from __future__ import annotations

import av
import numpy as np
import pytest

from avlabel.data.writer import write_clip
from avlabel.errors import AvlabelError


def _frames(num_frames=12, height=32, width=48):
    return np.random.default_rng(0).integers(0, 255, (num_frames, height, width, 3), dtype=np.uint8)


def _streams(path):
    with av.open(str(path)) as container:
        return {stream.type: stream.codec_context.name for stream in container.streams}


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        (".mp4", {"video": "h264", "audio": "aac"}),
        (".webm", {"video": "vp9", "audio": "opus"}),
        (".mkv", {"video": "h264", "audio": "aac"}),
        (".avi", {"video": "mpeg4", "audio": "pcm_s16le"}),
    ],
)
def test_video_with_audio_in_each_container(tmp_path, suffix, expected):
    audio = np.sin(np.linspace(0, 400, 8000)).astype(np.float32) * 0.5
    path = write_clip(tmp_path / f"clip{suffix}", _frames(), fps=24, audio=audio, sample_rate=16000)
    assert _streams(path) == expected


@pytest.mark.parametrize(
    ("suffix", "codec"), [(".wav", "pcm_s16le"), (".m4a", "aac"), (".ogg", "opus"), (".flac", "flac")]
)
def test_audio_only_files(tmp_path, suffix, codec):
    path = write_clip(tmp_path / f"sound{suffix}", None, audio=np.zeros((2, 4000), dtype=np.float32))
    assert _streams(path) == {"audio": codec}


def test_opus_at_an_unsupported_rate_is_resampled_to_48k(tmp_path):
    path = write_clip(tmp_path / "a.webm", _frames(), audio=np.zeros(22050, dtype=np.float32), sample_rate=22050)
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.sample_rate == 48000


def test_same_input_same_bytes(tmp_path):
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, 16000).astype(np.float32)
    first = write_clip(tmp_path / "a.mp4", _frames(25), audio=audio).read_bytes()
    second = write_clip(tmp_path / "b.mp4", _frames(25), audio=audio).read_bytes()
    assert first == second


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frames": _frames(height=31)}, "even width and height"),
        ({"frames": _frames().astype(np.float32)}, "uint8"),
        ({"frames": None}, "nothing to write"),
        ({"frames": None, "audio": np.zeros((3, 10), np.float32)}, "stereo"),
    ],
)
def test_bad_input_is_refused_without_leaving_a_file(tmp_path, kwargs, message):
    with pytest.raises(AvlabelError, match=message):
        write_clip(tmp_path / "x.mp4", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_unknown_suffix_and_video_in_audio_container(tmp_path):
    with pytest.raises(AvlabelError, match="unknown container"):
        write_clip(tmp_path / "x.xyz", _frames())
    with pytest.raises(AvlabelError, match="audio only"):
        write_clip(tmp_path / "x.wav", _frames())
