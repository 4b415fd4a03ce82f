"""Write real video/audio files with PyAV: the synthetic benchmark, test fixtures, examples.

`write_clip` encodes an RGB frame array and/or a float waveform into any container FFmpeg
can mux (mp4/H.264+AAC, webm/VP9+Opus, mkv, avi, and audio-only wav/m4a/flac/ogg). Codecs
default to the usual pair for the file's suffix. The file is written to a temporary sibling and
renamed, so an interrupted run never leaves a half-written clip.

Determinism. The synthetic benchmark promises "same seed, same bytes" whatever the workers, so
the same frames and samples must encode to the same bytes in any process, after any other clips:

* Encoding is single-threaded: x264 and libvpx give identical output only at a fixed thread count.
* x264 runs without macroblock-tree rate control (``mbtree=0``). With it (x264's default), the
  lookahead reads heap memory it never wrote at most frame sizes (48, 64, 96, 160 px squares and
  200x112 here; not 128 or 320x240), so the bitstream depended on what earlier allocations left
  there: the same clip gave other bytes when encoded after other clips in the same process, or
  under glibc's ``MALLOC_PERTURB_``, while every input plane and the audio were identical.
  Turning it off (or B-frames off) makes the output independent of heap contents; we keep the
  B-frames, which decoding tests rely on, and lose only a little compression.
* ``fflags=+bitexact`` drops the muxer's version string, so bytes do not depend on FFmpeg builds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import numpy as np

from avlabel._io import atomic_path
from avlabel.errors import AvlabelError

# suffix -> (FFmpeg muxer, default video codec, default audio codec); None: stream kind not allowed.
_CONTAINERS: dict[str, tuple[str, str | None, str]] = {
    ".mp4": ("mp4", "libx264", "aac"),
    ".m4v": ("mp4", "libx264", "aac"),
    ".mov": ("mov", "libx264", "aac"),
    ".mkv": ("matroska", "libx264", "aac"),
    ".webm": ("webm", "libvpx-vp9", "libopus"),
    ".avi": ("avi", "mpeg4", "pcm_s16le"),
    ".wav": ("wav", None, "pcm_s16le"),
    ".m4a": ("ipod", None, "aac"),
    ".flac": ("flac", None, "flac"),
    ".ogg": ("ogg", None, "libopus"),
    ".opus": ("opus", None, "libopus"),
}

# Encoder options that keep output deterministic (see the module docstring) and fast; users may
# override any of them.
_VIDEO_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"threads": "1", "mbtree": "0"},
    "libvpx-vp9": {"threads": "1", "deadline": "realtime", "cpu-used": "8", "row-mt": "0"},
    "libvpx": {"threads": "1", "deadline": "realtime", "cpu-used": "8"},
}


def write_clip(
    path: str | os.PathLike[str],
    frames: np.ndarray | None,
    fps: float = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    video_codec: str | None = None,
    audio_codec: str | None = None,
    *,
    rotation: int = 0,
    video_options: Mapping[str, str] | None = None,
    audio_options: Mapping[str, str] | None = None,
) -> Path:
    """Encode ``frames`` and/or ``audio`` into the media file ``path`` (atomically).

    Args:
        path: destination; its suffix picks the container (.mp4, .webm, .mkv, .mov, .avi, .wav,
            .m4a, .flac, .ogg, .opus).
        frames: ``(T, H, W, 3)`` uint8 RGB frames, or None for an audio-only file. H.264 and VP9
            store 4:2:0 chroma, so H and W must be even.
        fps: frame rate of ``frames`` (fractional rates such as 29.97 are kept exactly).
        audio: ``(S,)`` mono or ``(2, S)`` stereo float waveform in [-1, 1], or None for a
            video-only file.
        sample_rate: rate of ``audio`` in Hz. When the audio codec cannot store that rate (Opus
            takes 8/12/16/24/48 kHz only) the encoder resamples to 48 kHz.
        video_codec: FFmpeg encoder name; default: the usual one for the suffix (libx264 for mp4).
        audio_codec: FFmpeg encoder name; default: the usual one for the suffix (aac for mp4).
        rotation: counter-clockwise display rotation in degrees written as container metadata
            (what phones record); the pixels are stored unrotated.
        video_options: extra video encoder options (e.g. ``{"crf": "18", "g": "12"}``).
        audio_options: extra audio encoder options (e.g. ``{"b": "64k", "aac_coder": "fast"}``).

    Returns:
        ``path`` as a `Path`.
    """
    import av

    path = Path(path)
    if path.suffix.lower() not in _CONTAINERS:
        raise AvlabelError(
            f"cannot write {path.name}: unknown container suffix {path.suffix!r}; "
            f"use one of {', '.join(sorted(_CONTAINERS))}"
        )
    muxer, default_video, default_audio = _CONTAINERS[path.suffix.lower()]
    if frames is None and audio is None:
        raise AvlabelError(f"nothing to write to {path}: pass frames, audio or both")
    if frames is not None:
        frames = _check_frames(frames, path)
        video_codec = video_codec or default_video
        if video_codec is None:
            raise AvlabelError(f"{path.suffix} files hold audio only; write video to .mp4, .webm or .mkv")
    if audio is not None:
        audio = _check_audio(audio, path)
        audio_codec = audio_codec or default_audio

    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format=muxer, options={"fflags": "+bitexact"}) as container:
            video_stream = audio_stream = None
            if frames is not None:
                video_stream = _add_video_stream(container, frames, fps, video_codec, rotation, video_options)
            if audio is not None:
                audio_stream = _add_audio_stream(container, audio, sample_rate, audio_codec, audio_options)
            if video_stream is not None:
                for index, rgb in enumerate(frames):
                    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    frame.pts = index
                    container.mux(video_stream.encode(frame))
                container.mux(video_stream.encode(None))
            if audio_stream is not None:
                frame = av.AudioFrame.from_ndarray(audio, format="fltp", layout=audio_stream.layout.name)
                frame.sample_rate = sample_rate
                frame.pts = 0
                container.mux(audio_stream.encode(frame))
                container.mux(audio_stream.encode(None))
    return path


def _check_frames(frames: np.ndarray, path: Path) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise AvlabelError(f"frames for {path.name} must be a non-empty (T, H, W, 3) array, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise AvlabelError(f"frames for {path.name} must be uint8 RGB, got {frames.dtype}; scale and cast first")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise AvlabelError(
            f"frames for {path.name} are {frames.shape[2]}x{frames.shape[1]}; 4:2:0 video needs even width and height"
        )
    return np.ascontiguousarray(frames)


def _check_audio(audio: np.ndarray, path: Path) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[1] == 0 or audio.shape[0] > 2:
        raise AvlabelError(
            f"audio for {path.name} must be (S,) mono or (2, S) stereo with S > 0, got shape {audio.shape}"
        )
    return np.ascontiguousarray(np.clip(audio, -1.0, 1.0))


def _add_video_stream(container, frames, fps, codec, rotation, options):
    rate = Fraction(fps).limit_denominator(100_000)
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = "yuv420p"
    stream.options = {**_VIDEO_OPTIONS.get(codec, {}), **(options or {})}
    stream.codec_context.thread_count = 1
    if rotation:
        stream.set_display_rotation(rotation)
    return stream


def _add_audio_stream(container, audio, sample_rate, codec, options):
    import av

    supported_rates = av.Codec(codec, "w").audio_rates
    rate = sample_rate if not supported_rates or sample_rate in supported_rates else 48_000
    stream = container.add_stream(codec, rate=rate)
    stream.layout = "mono" if audio.shape[0] == 1 else "stereo"
    stream.options = dict(options or {})
    stream.codec_context.thread_count = 1
    return stream
