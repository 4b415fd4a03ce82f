"""Builders shared by the audio tests and the `avlabel tag` / `avlabel targets` CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avlabel.data.writer import write_clip

TINY_AST = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def tone(frequency: float, seconds: float, sample_rate: int = 16_000, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def frames(seconds: float, fps: int = 10, size: int = 32) -> np.ndarray:
    return np.full((round(seconds * fps), size, size, 3), 96, dtype=np.uint8)


def write_media(directory: Path) -> dict[str, Path]:
    """Real files of every kind the audio front end meets."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    media = {
        "tone_wav": write_clip(directory / "tone.wav", None, audio=tone(440, 3.0), sample_rate=16_000),
        "noise_wav": write_clip(
            directory / "noise.wav",
            None,
            audio=(0.2 * rng.standard_normal(3 * 22_050)).astype(np.float32),
            sample_rate=22_050,
        ),
        "silence_wav": write_clip(
            directory / "silence.wav", None, audio=np.zeros(3 * 16_000, np.float32), sample_rate=16_000
        ),
        # 12 s stereo 44.1 kHz AAC in H.264 video: downmix + resample + crop to 10 s.
        "stereo_mp4": write_clip(
            directory / "stereo.mp4",
            frames(12.0),
            fps=10,
            audio=np.stack([tone(1000, 12.0, 44_100), tone(1000, 12.0, 44_100, amplitude=0.1)]),
            sample_rate=44_100,
        ),
        "no_audio_mp4": write_clip(directory / "no_audio.mp4", frames(2.0), fps=10),
    }
    # 20 s of silence with a tone from 12 s on: tells whether start/end land where they should.
    onset = np.zeros(20 * 16_000, np.float32)
    onset[12 * 16_000 :] = tone(440, 8.0)
    media["onset_m4a"] = write_clip(directory / "onset.m4a", None, audio=onset, sample_rate=16_000)
    media["garbage_mp4"] = directory / "garbage.mp4"
    media["garbage_mp4"].write_bytes(b"this is not a media file\n" * 64)
    truncated = media["stereo_mp4"].read_bytes()
    media["truncated_mp4"] = directory / "truncated.mp4"
    media["truncated_mp4"].write_bytes(truncated[: len(truncated) // 3])
    return media


def save_tiny_ast(directory: Path, labels, seed: int = 0, **config) -> Path:
    """A random AST-shaped checkpoint saved the way real ones are (config, safetensors, preprocessor)."""
    from avlabel.audio.ast import save_random_ast

    return save_random_ast(directory, labels, seed, **{**TINY_AST, **config})


def make_savld(video_labels, audio, neighbours, name: str = "videos"):
    """A SAVLD over ``video_labels`` whose row ``v`` lists the audio label indices ``neighbours[v]``."""
    from avlabel.labels import LabelSet
    from avlabel.savld import Savld

    neighbours = np.asarray(neighbours, dtype=np.int64)
    return Savld(
        video=LabelSet(name, tuple(video_labels)),
        audio=audio,
        k=neighbours.shape[1],
        metric="cosine",
        neighbours=neighbours,
        scores=np.linspace(1.0, 0.5, neighbours.size, dtype=np.float32).reshape(neighbours.shape),
        provenance={"backend": "test"},
    )
