"""Audio front end on real files: resampling, downmix, window placement, no-audio cases, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from avlabel.audio.decode import SAMPLE_RATE, AudioStatus, load_windows, window_spans
from avlabel.errors import AvlabelError


def _dominant_frequency(waveform: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(waveform))


@pytest.mark.parametrize(
    ("start", "end", "count", "expected"),
    [
        (0.0, 4.0, 1, [[0.0, 4.0]]),  # shorter than a window: the whole clip, unpadded
        (2.0, 6.0, 3, [[2.0, 6.0]] * 3),  # short clip, several windows: all the same
        (0.0, 30.0, 1, [[10.0, 20.0]]),  # long clip: the centred window
        (5.0, 35.0, 3, [[5.0, 15.0], [15.0, 25.0], [25.0, 35.0]]),  # evenly spread over the clip
        (0.0, 12.0, 2, [[0.0, 10.0], [2.0, 12.0]]),
    ],
)
def test_window_spans(start, end, count, expected):
    np.testing.assert_allclose(window_spans(start, end, count, 10.0), expected)


def test_window_spans_rejects_zero_windows():
    with pytest.raises(AvlabelError, match="at least 1"):
        window_spans(0.0, 10.0, 0)


def test_wav_tone_is_kept_at_16k(media):
    windows = load_windows(media["tone_wav"])
    assert windows.status.tolist() == [AudioStatus.OK]
    assert windows.lengths.tolist() == [3 * SAMPLE_RATE]  # 3 s clip: not padded with silence
    assert windows.waveforms.shape == (1, 10 * SAMPLE_RATE) and windows.waveforms.dtype == np.float32
    assert not windows.waveforms[0, 3 * SAMPLE_RATE :].any()
    assert _dominant_frequency(windows.waveforms[0, : 3 * SAMPLE_RATE]) == pytest.approx(440, abs=2)
    assert np.abs(windows.waveforms).max() == pytest.approx(0.3, abs=0.01)


def test_noise_at_22k_is_resampled(media):
    windows = load_windows(media["noise_wav"])
    assert windows.status.tolist() == [AudioStatus.OK]
    assert abs(int(windows.lengths[0]) - 3 * SAMPLE_RATE) <= 16  # resampler edge effects only


def test_stereo_aac_in_mp4_is_downmixed_and_centre_cropped(media):
    windows = load_windows(media["stereo_mp4"])
    assert windows.status.tolist() == [AudioStatus.OK]
    np.testing.assert_allclose(windows.spans, [[1.0, 11.0]])  # 12 s file, centred 10 s
    assert windows.lengths.tolist() == [10 * SAMPLE_RATE]
    middle = windows.waveforms[0, SAMPLE_RATE : 9 * SAMPLE_RATE]
    assert _dominant_frequency(middle) == pytest.approx(1000, abs=2)
    # mono = mean of the channels (0.3 and 0.1 amplitude): 0.2
    assert np.percentile(np.abs(middle), 99.9) == pytest.approx(0.2, abs=0.02)


def test_clip_bounds_select_the_right_audio(media):
    # The tone starts at 12 s: a clip [10, 14] has 2 s of silence then the tone.
    windows = load_windows(media["onset_m4a"], start=10.0, end=14.0)
    waveform = windows.waveforms[0, : windows.lengths[0]]
    assert windows.lengths[0] == pytest.approx(4 * SAMPLE_RATE, abs=2)
    onset = np.argmax(np.abs(waveform) > 0.1) / SAMPLE_RATE
    assert onset == pytest.approx(2.0, abs=0.03)
    assert load_windows(media["onset_m4a"], start=2.0, end=8.0).status.tolist() == [AudioStatus.SILENT]


def test_multi_window_testing(media):
    windows = load_windows(media["onset_m4a"], num_windows=3)  # 20 s file: windows at 0, 5, 10 s
    np.testing.assert_allclose(windows.spans, [[0, 10], [5, 15], [10, 20]])
    assert windows.status.tolist() == [AudioStatus.SILENT, AudioStatus.OK, AudioStatus.OK]
    assert windows.lengths.tolist() == [10 * SAMPLE_RATE] * 3


def test_window_past_the_end_of_the_audio_is_empty(media):
    windows = load_windows(media["tone_wav"], start=5.0, end=8.0)
    assert windows.status.tolist() == [AudioStatus.EMPTY] and windows.lengths.tolist() == [0]


@pytest.mark.parametrize(
    ("name", "status"), [("no_audio_mp4", AudioStatus.NO_AUDIO_STREAM), ("silence_wav", AudioStatus.SILENT)]
)
def test_missing_or_silent_audio_is_recorded_not_raised(media, name, status):
    windows = load_windows(media[name], num_windows=2)
    assert windows.status.tolist() == [status, status]


@pytest.mark.parametrize("name", ["garbage_mp4", "truncated_mp4"])
def test_corrupt_files_raise_one_line_errors(media, name):
    with pytest.raises(AvlabelError, match="corrupt") as error:
        load_windows(media[name])
    assert "\n" not in str(error.value)


def test_missing_file_and_inverted_bounds(media, tmp_path):
    with pytest.raises(AvlabelError, match="not found"):
        load_windows(tmp_path / "nope.wav")
    with pytest.raises(AvlabelError, match="ends"):
        load_windows(media["tone_wav"], start=2.0, end=1.0)


@pytest.mark.parametrize(
    ("suffix", "codec"),
    [(".wav", "pcm_s16le"), (".wav", "pcm_u8"), (".wav", "pcm_s32le"), (".wav", "pcm_f32le"), (".flac", "flac")],
)
def test_every_sample_format_becomes_the_channel_mean(tmp_path, suffix, codec):
    from avlabel.data.writer import write_clip

    from ._media import tone

    stereo = np.stack([tone(500, 2.0, 16_000, 0.3), tone(500, 2.0, 16_000, 0.1)])
    path = write_clip(tmp_path / f"stereo{suffix}", None, audio=stereo, sample_rate=16_000, audio_codec=codec)
    waveform = load_windows(path).waveforms[0, : 2 * SAMPLE_RATE]
    np.testing.assert_allclose(waveform, stereo.mean(axis=0), atol=0.01 if codec == "pcm_u8" else 1e-4)
