"""Real small media files written with PyAV, shared by the data tests.

Frames carry their own index as 8 black/white bit blocks (robust to lossy coding), so a test can
check *which* frame a decoder returned, not just that it returned one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avlabel.data.writer import write_clip

HEIGHT, WIDTH = 64, 96  # 8 bit blocks of 12 px across the width


def pattern_frames(num_frames: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Frames whose upper half encodes the frame index in 8 bit blocks; a red marker top-left."""
    frames = np.full((num_frames, height, width, 3), 128, dtype=np.uint8)
    block = width // 8
    for index in range(num_frames):
        for bit in range(8):
            frames[index, : height // 2, bit * block : (bit + 1) * block] = 255 if (index >> bit) & 1 else 0
    frames[:, height // 2 : height // 2 + 8, :8] = (255, 0, 0)
    return frames


def frame_numbers(frames: np.ndarray) -> list[int]:
    """Decode the indices written by :func:`pattern_frames` from ``(N, H, W, 3)`` frames."""
    height, width = frames.shape[1:3]
    block = width // 8
    bits = frames[:, height // 4, block // 2 :: block, :].mean(-1)[:, :8] > 127
    return (bits * (1 << np.arange(8))).sum(1).tolist()


def _tone(seconds: float, sample_rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    """Named media files: several containers/codecs, odd rates, rotation, broken files."""
    root = tmp_path_factory.mktemp("videos")
    files = {
        "mp4": write_clip(root / "h264_aac.mp4", pattern_frames(60), fps=25, audio=_tone(2.4)),
        "mp4_long": write_clip(root / "long_10s.mp4", pattern_frames(250), fps=25, video_options={"g": "25"}),
        "webm": write_clip(root / "vp9_opus.webm", pattern_frames(45), fps=30, audio=_tone(1.5)),
        "mkv": write_clip(root / "h264_2997.mkv", pattern_frames(40), fps=30000 / 1001),
        "avi": write_clip(root / "mpeg4_7p5.avi", pattern_frames(30), fps=7.5),
        "rotated": write_clip(root / "rotated.mp4", pattern_frames(10), fps=25, rotation=90),
        "short": write_clip(root / "short.mp4", pattern_frames(3), fps=25),
        "audio_only": write_clip(root / "audio_only.m4a", None, audio=_tone(1.0)),
    }
    long_mkv = write_clip(root / "to_truncate.mkv", pattern_frames(120), fps=25, video_options={"g": "10"})
    truncated = root / "truncated.mkv"
    data = long_mkv.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 5])
    files["truncated"] = truncated
    files["garbage"] = root / "garbage.mp4"
    files["garbage"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    files["empty"] = root / "empty.mp4"
    files["empty"].write_bytes(b"")
    return files


@pytest.fixture
def decode_indices():
    """The :func:`frame_numbers` helper, for tests that check which frames were decoded."""
    return frame_numbers
