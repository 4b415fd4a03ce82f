"""Clip sampling: T frames at a fixed stride, random offset for training, uniform clips for testing."""

from __future__ import annotations

import numpy as np
import pytest

from avlabel.data.sampling import clip_span, sample_test_clips, sample_train_clip


def test_train_clip_has_fixed_stride_and_random_offset_covering_the_whole_range():
    rng = np.random.default_rng(0)
    clips = np.stack([sample_train_clip(100, 8, 8, rng) for _ in range(500)])
    assert clips.shape == (500, 8)
    assert (np.diff(clips, axis=1) == 8).all()
    starts = clips[:, 0]
    assert starts.min() == 0 and starts.max() == 100 - clip_span(8, 8)  # offsets 0..43, inclusive
    assert len(np.unique(starts)) > 30


def test_short_video_repeats_its_last_frame():
    assert sample_train_clip(20, 8, 4, np.random.default_rng(0)).tolist() == [0, 4, 8, 12, 16, 19, 19, 19]
    assert sample_test_clips(1, 4, 2, num_clips=2).tolist() == [[0, 0, 0, 0], [0, 0, 0, 0]]


def test_test_clips_are_uniformly_spaced_and_centred():
    clips = sample_test_clips(250, 8, 8, num_clips=4)
    assert clips.shape == (4, 8)
    starts = clips[:, 0]
    # 194 offsets split into 4 shares of 48.5; each clip starts mid-share.
    assert starts.tolist() == [24, 72, 121, 169]
    assert (np.diff(clips, axis=1) == 8).all()
    one = sample_test_clips(250, 8, 8, num_clips=1)[0]
    assert abs((one[0] + one[-1]) / 2 - 124.5) <= 1  # the single clip sits in the middle


@pytest.mark.parametrize("video_fps", [25.0, 30.0, 60.0])
def test_sample_fps_makes_the_stride_a_fixed_duration(video_fps):
    clip = sample_test_clips(int(10 * video_fps), 8, 8, num_clips=1, video_fps=video_fps, sample_fps=25.0)[0]
    seconds = clip / video_fps
    assert np.diff(seconds) == pytest.approx(np.full(7, 8 / 25), abs=1 / video_fps)
