"""Seek-based decoding returns exactly the frames asked for, from every container, and fails clearly."""

from __future__ import annotations

import av
import numpy as np
import pytest

from avlabel.data.decode import VideoReader, open_container, probe_video, read_frames
from avlabel.errors import AvlabelError


@pytest.mark.parametrize(
    ("name", "num_frames", "fps"),
    [("mp4", 60, 25.0), ("webm", 45, 30.0), ("mkv", 40, 30000 / 1001), ("avi", 30, 7.5)],
)
def test_frames_are_exactly_the_requested_ones(videos, decode_indices, name, num_frames, fps):
    wanted = [num_frames - 1, 0, 7, 8, 7, num_frames // 2, 3]  # unordered, repeated
    with VideoReader(videos[name]) as reader:
        assert reader.num_frames == num_frames
        assert reader.fps == pytest.approx(fps, rel=1e-3)
        frames = reader.frames(wanted)
    assert frames.shape == (len(wanted), 64, 96, 3) and frames.dtype == np.uint8
    assert decode_indices(frames) == wanted


def _keyframe_indices(path) -> np.ndarray:
    """Display-order indices of the keyframes, from the packets (independently of the reader)."""
    with av.open(str(path)) as container:
        packets = [(p.pts, p.is_keyframe) for p in container.demux(video=0) if p.pts is not None]
    order = sorted(pts for pts, _ in packets)
    return np.array(sorted(order.index(pts) for pts, key in packets if key))


def test_eight_frames_of_a_ten_second_clip_do_not_decode_the_whole_file(videos, decode_indices):
    wanted = [5, 40, 75, 110, 145, 180, 215, 249]
    with VideoReader(videos["mp4_long"]) as reader:
        assert reader.num_frames == 250
        frames = reader.frames(wanted)
        decoded = reader.decoded_frames
    assert decode_indices(frames) == wanted
    # Without skipping, each frame costs the run from the keyframe at or before it (GOPs <= 25);
    # non-reference B-frames shown before a wanted frame are skipped, so fewer still.
    keyframes = _keyframe_indices(videos["mp4_long"])
    gop_runs = sum(index - keyframes[keyframes <= index].max() + 1 for index in wanted)
    assert len(wanted) <= decoded < gop_runs < 8 * 25


def test_dense_indices_in_one_gop_are_decoded_without_reseeking(videos):
    with VideoReader(videos["mp4_long"]) as reader:
        reader.frames(np.arange(30, 46, 2))
        assert reader.decoded_frames <= 46 - 25 + 1  # from the keyframe at 25 through frame 44


def test_rotation_metadata_is_applied(videos):
    info = probe_video(videos["rotated"])
    assert info.rotation == 90
    assert (info.width, info.height) == (64, 96)
    frame = read_frames(videos["rotated"], [0])[0]
    assert frame.shape == (96, 64, 3)
    # The red marker at the stored frame's left edge ends up at the bottom after a 90° turn
    # counter-clockwise (stored rows 32-39, columns 0-7 -> displayed rows 88-95, columns 32-39).
    marker = frame[88:96, 32:40].astype(int)
    assert marker[..., 0].mean() > 200 and marker[..., 1].mean() < 60


def test_short_clip_repeats_its_last_frame(videos, decode_indices):
    frames = read_frames(videos["short"], [0, 2, 5, 9])
    assert decode_indices(frames) == [0, 2, 2, 2]


def test_short_side_scales_down_only(videos):
    assert read_frames(videos["mp4"], [0], short_side=32).shape == (1, 32, 48, 3)
    assert read_frames(videos["mp4"], [0], short_side=500).shape == (1, 64, 96, 3)


def test_probe_reports_stream_metadata(videos):
    info = probe_video(videos["mp4"])
    assert (info.num_frames, info.fps, info.width, info.height, info.rotation) == (60, 25.0, 96, 64, 0)
    assert info.duration == pytest.approx(2.4)
    assert info.has_audio and info.codec == "h264"
    assert not probe_video(videos["mkv"]).has_audio


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("garbage", "cannot open"),
        ("empty", r"empty \(0 bytes\)"),
        ("audio_only", "no video stream"),
        ("truncated", "truncated"),
    ],
)
def test_broken_inputs_raise_one_clear_error(videos, name, message):
    with pytest.raises(AvlabelError, match=message):
        with VideoReader(videos[name]) as reader:
            reader.frames(np.arange(reader.num_frames))


def test_open_container_names_a_missing_file(tmp_path):
    with pytest.raises(AvlabelError, match="not found"):
        open_container(tmp_path / "nope.mp4")


@pytest.mark.parametrize("name", ["mp4_long", "webm", "mkv"])
def test_random_index_sets_match_sequential_decoding(videos, decode_indices, name):
    rng = np.random.default_rng(7)
    with VideoReader(videos[name]) as reader:
        assert decode_indices(np.stack(list(reader.iter_frames()))) == list(range(reader.num_frames))
        for _ in range(6):
            wanted = rng.integers(0, reader.num_frames, size=8).tolist()
            assert decode_indices(reader.frames(wanted)) == wanted
