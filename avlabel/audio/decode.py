"""Audio front end: decode a manifest item's sound track to AST's input waveform (section 3.3).

AST was trained on 10 s AudioSet clips sampled at 16 kHz, mono, as float samples in [-1, 1]
(its filterbank then sees 998 frames padded to 1024). `load_windows` turns any manifest
item -- a video container or an audio file, optionally restricted to the clip's ``start``/``end``
-- into one or more such windows:

* The clip segment is ``[start, end]`` (default: the whole audio stream).
* A segment no longer than ``window_seconds`` gives every window the whole segment, unpadded:
  AST's feature extractor pads the *filterbank* with zeros up to 1024 frames, which is what the
  model saw during its own training, so padding the waveform with digital silence would not
  be faithful.
* A longer segment gives ``num_windows`` crops of ``window_seconds``: one centred crop, or crops
  whose starts are spread evenly from the segment's start to its end (the multi-clip test
  protocol the video side uses).

Decoding uses PyAV (FFmpeg); channels are averaged into mono and the clip is resampled with
PyAV's ``AudioResampler`` (libswresample) in one call. Decoding seeks near the first needed sample, so long files are not decoded
from the beginning. Audio problems are data, not errors: a file without an audio stream, an
empty window and a silent window are reported through `AudioStatus` (they get a zero
embedding and relevance target 0 downstream). Only an unreadable file raises `AvlabelError`.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avlabel.errors import AvlabelError

SAMPLE_RATE = 16_000  # Hz, AST's input rate
WINDOW_SECONDS = 10.0  # AudioSet clip length, AST's training input
# A window whose absolute peak stays below this (-80 dBFS) is digital silence (muted tracks,
# encoder padding); real recordings, even quiet ones, have a noise floor well above it.
SILENCE_PEAK = 1e-4
# Windows shorter than one 25 ms filterbank frame carry no features at all.
_MIN_SAMPLES = 400
# Decoding starts from the beginning when the clip starts this close to it (a seek saves nothing).
_SEEK_MIN_SECONDS = 1.0


class AudioStatus(enum.IntEnum):
    """What a decoded window holds; stored as ``uint8`` in the audio cache."""

    OK = 0  # audible audio
    NO_AUDIO_STREAM = 1  # the file has no audio stream
    EMPTY = 2  # an audio stream, but (almost) no samples inside the window
    SILENT = 3  # samples, but digital silence (peak below SILENCE_PEAK)


@dataclass(frozen=True)
class AudioWindows:
    """The windows of one manifest item.

    Attributes:
        waveforms: ``(W, N)`` float32 mono samples at ``sample_rate``; row ``i`` is zero after
            ``lengths[i]``. ``N`` is ``window_seconds * sample_rate``.
        lengths: ``(W,)`` int64 number of valid samples per window.
        status: ``(W,)`` uint8 `AudioStatus` codes.
        spans: ``(W, 2)`` float64 start/end time (seconds, in the file's timeline) of each window.
    """

    waveforms: np.ndarray
    lengths: np.ndarray
    status: np.ndarray
    spans: np.ndarray


def window_spans(start: float, end: float, num_windows: int = 1, window_seconds: float = WINDOW_SECONDS) -> np.ndarray:
    """Start/end times of ``num_windows`` windows over the clip segment ``[start, end]``.

    Returns:
        ``(num_windows, 2)`` float64 array; see the module docstring for the placement rule.
    """
    if num_windows < 1:
        raise AvlabelError(f"the number of audio windows must be at least 1, got {num_windows}")
    length = max(end - start, 0.0)
    if length <= window_seconds:
        starts = np.full(num_windows, start, dtype=np.float64)
        return np.stack([starts, np.full(num_windows, start + length)], axis=1)
    if num_windows == 1:
        starts = np.array([start + (length - window_seconds) / 2])
    else:
        starts = start + np.linspace(0.0, length - window_seconds, num_windows)
    return np.stack([starts, starts + window_seconds], axis=1)


def load_windows(
    path: str | os.PathLike[str],
    start: float | None = None,
    end: float | None = None,
    num_windows: int = 1,
    window_seconds: float = WINDOW_SECONDS,
    sample_rate: int = SAMPLE_RATE,
) -> AudioWindows:
    """Decode the audio windows of one media file (video container or audio file).

    Args:
        path: the media file.
        start: clip start in seconds (default: the start of the audio stream).
        end: clip end in seconds (default: the end of the audio stream).
        num_windows: windows to cut from the clip (1 for training; several for multi-clip testing).
        window_seconds: window length (AST: 10 s).
        sample_rate: output rate (AST: 16 kHz).

    Raises:
        AvlabelError: the file is missing, empty, corrupt or not a media file, or the clip bounds
            are inverted.
    """
    from avlabel.data.decode import open_container

    if start is not None and end is not None and end <= start:
        raise AvlabelError(f"clip of {path} ends ({end}) before it starts ({start}); fix start/end in the manifest")
    size = round(window_seconds * sample_rate)
    with open_container(path) as container:
        if not container.streams.audio:
            spans = window_spans(start or 0.0, end if end is not None else start or 0.0, num_windows, window_seconds)
            return _windows_without_audio(spans, size, AudioStatus.NO_AUDIO_STREAM)
        stream = container.streams.audio[0]
        clip_start = start if start is not None else _stream_start(stream)
        clip_end = end if end is not None else _stream_end(stream, container)
        if clip_end is not None:
            spans = window_spans(clip_start, clip_end, num_windows, window_seconds)
            waveform, origin = _decode(container, stream, Path(path), spans[:, 0].min(), spans[:, 1].max(), sample_rate)
        else:  # duration unknown (some streamed formats): decode to the end, then place windows
            waveform, origin = _decode(container, stream, Path(path), clip_start, None, sample_rate)
            spans = window_spans(
                clip_start, max(origin + len(waveform) / sample_rate, clip_start), num_windows, window_seconds
            )
    return _cut(waveform, origin, spans, size, sample_rate)


def _windows_without_audio(spans: np.ndarray, size: int, status: AudioStatus) -> AudioWindows:
    count = len(spans)
    return AudioWindows(
        waveforms=np.zeros((count, size), dtype=np.float32),
        lengths=np.zeros(count, dtype=np.int64),
        status=np.full(count, status, dtype=np.uint8),
        spans=spans,
    )


def _stream_start(stream) -> float:
    if stream.start_time is None:
        return 0.0
    return max(float(stream.start_time * stream.time_base), 0.0)


def _stream_end(stream, container) -> float | None:
    """End time of the audio stream from the container metadata, None when unknown."""
    if stream.duration is not None and stream.time_base is not None:
        return _stream_start(stream) + float(stream.duration * stream.time_base)
    if container.duration is not None:  # microseconds (AV_TIME_BASE)
        return container.duration / 1_000_000
    return None


def _decode(
    container, stream, path: Path, start: float, end: float | None, sample_rate: int
) -> tuple[np.ndarray, float]:
    """Decode ``[start, end]`` (end None: to the end) as mono float32 at ``sample_rate``.

    Returns:
        the waveform and the time (seconds) of its first sample, which can be earlier than
        ``start`` (decoding resumes at a packet boundary) -- the caller slices by time.
    """
    import av

    stream.codec_context.thread_count = 1  # DataLoader workers already decode in parallel
    if start >= _SEEK_MIN_SECONDS:
        # Seek lands on a packet at or before ``start``; audio packets are all independently
        # decodable, so nothing before it is needed.
        container.seek(int(start / stream.time_base), stream=stream, backward=True, any_frame=False)
    chunks: list[np.ndarray] = []
    origin: float | None = None
    rate = stream.rate
    decoded = 0
    failures = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                # A damaged packet (FFmpeg's CLI skips these too); the file is only unusable when
                # nothing decodes at all, which the check below reports.
                failures += 1
                continue
            for frame in frames:
                if origin is None:
                    origin = float(frame.time) if frame.time is not None else 0.0
                    rate = frame.sample_rate
                chunks.append(_planar(frame))
                decoded += frame.samples
            if end is not None and origin is not None and origin + decoded / rate >= end:
                break
    except av.FFmpegError as error:
        raise AvlabelError(
            f"cannot decode the audio of {path}: {error}; the file is corrupt — re-encode it or drop it"
        ) from None
    if failures and not chunks:
        raise AvlabelError(
            f"cannot decode any audio packet of {path} ({failures} failed); the file is corrupt — re-encode it or drop it"
        )
    native = _mono(np.concatenate(chunks, axis=1)) if chunks else np.zeros(0, np.float32)
    return _resample(native, rate, sample_rate), origin if origin is not None else start


# Integer sample formats -> float in [-1, 1] (FFmpeg's own convention: divide by 2^(bits-1)).
_INTEGER_SCALE = {np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31, np.dtype(np.int64): 2.0**63}


def _planar(frame) -> np.ndarray:
    """One decoded frame's samples as ``(channels, n)``, in the frame's own dtype."""
    samples = frame.to_ndarray()
    if not frame.format.is_planar:  # packed: (1, n * channels), interleaved
        samples = samples.reshape(-1, len(frame.layout.channels)).T
    return samples


def _mono(samples: np.ndarray) -> np.ndarray:
    """``(channels, n)`` samples of any sample format -> float32 mono, the mean of the channels.

    The mean of the channels is the downmix torchaudio/librosa/datasets pipelines feed AST;
    libswresample's stereo->mono matrix would scale each channel by 1/sqrt(2) instead and shift
    every log-mel energy.
    """
    if samples.dtype == np.uint8:
        samples = (samples.astype(np.float32) - 128.0) / 128.0
    elif samples.dtype in _INTEGER_SCALE:
        samples = samples / _INTEGER_SCALE[samples.dtype]
    return samples.mean(axis=0, dtype=np.float32)


def _resample(waveform: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resample mono float32 with libswresample, in one call.

    One call over the whole clip instead of one per decoded frame: each call pays a fixed
    filter-graph cost (about 50 us), which for 1024-sample AAC frames is more than the
    resampling itself; the output is the same to float rounding.
    """
    import av

    if rate == target or len(waveform) == 0:
        return waveform
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(waveform[None]), format="fltp", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=target)
    outputs = [*resampler.resample(frame), *resampler.resample(None)]
    return np.concatenate([out.to_ndarray().reshape(-1) for out in outputs]).astype(np.float32, copy=False)


def _cut(waveform: np.ndarray, origin: float, spans: np.ndarray, size: int, sample_rate: int) -> AudioWindows:
    """Slice each window's span out of ``waveform`` (whose first sample is at time ``origin``)."""
    count = len(spans)
    waveforms = np.zeros((count, size), dtype=np.float32)
    lengths = np.zeros(count, dtype=np.int64)
    status = np.zeros(count, dtype=np.uint8)
    for index, (span_start, span_end) in enumerate(spans):
        first = max(round((span_start - origin) * sample_rate), 0)
        last = min(round((span_end - origin) * sample_rate), first + size, len(waveform))
        window = waveform[first:last]
        lengths[index] = len(window)
        waveforms[index, : len(window)] = window
        if len(window) < _MIN_SAMPLES:
            status[index] = AudioStatus.EMPTY
        elif np.abs(window).max() < SILENCE_PEAK:
            status[index] = AudioStatus.SILENT
    return AudioWindows(waveforms=waveforms, lengths=lengths, status=status, spans=spans)
