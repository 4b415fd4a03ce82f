"""Which frames a clip uses: T frames at a fixed stride (paper, Implementation Details: 8 frames).

Training takes one clip per video at a random temporal offset; testing takes ``num_clips``
uniformly spaced clips (the paper averages 4 clips x 3 crops). Indices are frame numbers of the
file (0-based, display order). When a video is shorter than a clip spans, indices past its end
repeat the last frame (the decoder clamps them).

Frame rates differ between files (24, 25, 29.97, 30, 60 fps), so ``sample_fps`` optionally
defines the stride on a common time axis: stride 8 at ``sample_fps=25`` means 0.32 s between
sampled frames for every file, whatever its own rate. Without it the stride counts the file's
own frames, as mmaction2 and the paper's code base do.
"""

from __future__ import annotations

import numpy as np


def clip_span(num_samples: int, stride: int) -> int:
    """Frames covered by one clip, first to last sampled frame inclusive."""
    return (num_samples - 1) * stride + 1


def sample_train_clip(
    num_frames: int,
    num_samples: int = 8,
    stride: int = 8,
    rng: np.random.Generator | None = None,
    *,
    video_fps: float | None = None,
    sample_fps: float | None = None,
) -> np.ndarray:
    """One clip at a uniformly random temporal offset: ``(num_samples,)`` int64 frame indices."""
    rng = rng if rng is not None else np.random.default_rng()
    length = _virtual_length(num_frames, video_fps, sample_fps)
    room = max(0, length - clip_span(num_samples, stride))
    offset = int(rng.integers(0, room + 1))
    virtual = offset + np.arange(num_samples) * stride
    return _to_file_frames(virtual, num_frames, video_fps, sample_fps)


def sample_test_clips(
    num_frames: int,
    num_samples: int = 8,
    stride: int = 8,
    num_clips: int = 4,
    *,
    video_fps: float | None = None,
    sample_fps: float | None = None,
) -> np.ndarray:
    """``num_clips`` clips whose starts split the available offsets evenly: ``(num_clips, num_samples)``.

    Each clip starts in the middle of its share of the offsets, so one clip sits in the middle of
    the video and several cover it without favouring either end.
    """
    length = _virtual_length(num_frames, video_fps, sample_fps)
    room = max(0, length - clip_span(num_samples, stride))
    share = (room + 1) / num_clips
    offsets = np.floor(share * (np.arange(num_clips) + 0.5)).astype(np.int64)
    virtual = offsets[:, None] + np.arange(num_samples)[None, :] * stride
    return _to_file_frames(virtual, num_frames, video_fps, sample_fps)


def _virtual_length(num_frames: int, video_fps: float | None, sample_fps: float | None) -> int:
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if sample_fps is None:
        return num_frames
    if not video_fps:
        raise ValueError("sample_fps needs the video's own fps")
    return max(1, int(np.floor(num_frames * sample_fps / video_fps)))


def _to_file_frames(
    virtual: np.ndarray, num_frames: int, video_fps: float | None, sample_fps: float | None
) -> np.ndarray:
    frames = virtual if sample_fps is None else np.round(virtual * (video_fps / sample_fps))
    return np.minimum(frames.astype(np.int64), num_frames - 1)
