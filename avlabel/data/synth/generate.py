"""Generate the synthetic audio-visual benchmark (``avlabel synth``).

Output folder::

    manifest.csv      video_id,path,label,split,start,end  (paths relative to the folder)
    classes.txt       the benchmark's label set, one Kinetics-400 name per line (pass it as
                      ``--video``/``data.label_set``: an 8-way head trains far faster than 400-way)
    audio_tags.csv    video_id,audio_labels,relevant       (AudioSet names joined by ";")
    synth.json        every parameter, the class table, and each clip's plan and random draws
    videos/<class>/<video_id>.mp4   H.264 video + AAC audio

The paper's setting (Sec. 1): labels describe what is *seen*, and the audio of a clip is
sometimes its class's own sound (relevant), sometimes another class's sound (misleading) and
sometimes background. Per class, clips are split train/val/test (60/20/20 by default) and within
every class and split the three kinds of sound are given to exact shares (``audio_mix``: own,
other class, background; 50/35/15 by default, rounded by largest remainder), optionally per
class (``class_audio_mix``). An other-class clip plays the sound of a randomly chosen other
class, a background clip one of white/pink noise, mains hum or silence; ``audio_tags.csv`` names
the sound actually played. The picture follows `avlabel.data.synth.visuals`.

Defaults and why: 8 classes x 100 clips (60 training clips per class: enough for a small ViT
from scratch to learn the default visual cue), 64x64 pixels, 25 fps, 2 s (50 frames: 4 frames
at stride 8 span 25, leaving room for a random offset), 16 kHz mono audio (what AST resamples to
anyway; AST's 10 s window is padded by the audio front end).

Determinism: every clip draws from its own generator seeded by ``(seed, class, clip)``, and the
encoders run single-threaded with bit-exact muxing, so the same seed gives byte-identical files
whatever the number of worker processes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from avlabel import __version__
from avlabel._io import atomic_write_json, atomic_write_text
from avlabel.data.manifest import ClipRecord, write_manifest
from avlabel.data.synth.classes import BACKGROUNDS, CLASSES, SynthClass
from avlabel.data.synth.sounds import render_sound
from avlabel.data.synth.visuals import VISUAL_CUES, VisualParams, render_visual
from avlabel.errors import AvlabelError

SPLITS = ("train", "val", "test")
AUDIO_KINDS = ("own", "other", "background")  # the class's own sound, another class's, a background


@dataclass(frozen=True)
class SynthConfig:
    """Every parameter of a generated benchmark (written to ``synth.json``)."""

    classes: int = 8  # number of classes, taken in order from avlabel.data.synth.classes.CLASSES
    per_class: int = 100  # clips per class
    audio_mix: tuple[float, float, float] = (0.5, 0.35, 0.15)  # shares of own / other-class / background sound
    class_audio_mix: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # class name -> its own mix
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train, val, test
    seed: int = 0
    duration: float = 2.0  # seconds
    fps: float = 25.0
    sample_rate: int = 16000
    loudness: tuple[float, float] = (0.3, 0.8)  # peak amplitude range of the sound
    video_options: dict[str, str] = field(default_factory=lambda: {"crf": "28", "preset": "veryfast"})  # libx264
    audio_options: dict[str, str] = field(default_factory=lambda: {"aac_coder": "fast"})  # FFmpeg's AAC encoder
    visual: VisualParams = field(default_factory=VisualParams)

    def __post_init__(self):
        if not 2 <= self.classes <= len(CLASSES):
            raise AvlabelError(
                f"--classes must be between 2 and {len(CLASSES)} (the classes with a synthetic sound), got {self.classes}"
            )
        if self.per_class < 5:
            raise AvlabelError(f"--per-class must be at least 5 (one clip per split), got {self.per_class}")
        _check_mix(self.audio_mix, "--audio-mix")
        names = [synth_class.name for synth_class in self.class_table]
        for name, mix in self.class_audio_mix.items():
            if name not in names:
                raise AvlabelError(
                    f"--class-audio-mix: {name!r} is not one of the benchmark's classes ({', '.join(names)})"
                )
            _check_mix(mix, f"--class-audio-mix {name!r}")
        if abs(sum(self.split_fractions) - 1.0) > 1e-6 or min(self.split_fractions) < 0:
            raise AvlabelError(f"split fractions must be non-negative and sum to 1, got {self.split_fractions}")
        if self.visual.size < 32 or self.visual.size % 2:
            raise AvlabelError(
                f"--size must be an even number of pixels >= 32 (H.264 stores 4:2:0), got {self.visual.size}"
            )
        if self.visual.cue not in VISUAL_CUES:
            raise AvlabelError(f"--visual-cue must be one of {', '.join(VISUAL_CUES)}, got {self.visual.cue!r}")
        cue = self.visual.hue_drift
        if cue.hue_sigma < 0 or cue.drift_sigma < 0:
            raise AvlabelError(
                f"--hue-sigma and --drift-sigma must be >= 0 radians, got {cue.hue_sigma} and {cue.drift_sigma}"
            )
        if self.duration <= 0.2 or self.fps <= 0:
            raise AvlabelError(
                f"duration must exceed 0.2 s and fps be positive, got {self.duration} s at {self.fps} fps"
            )

    @property
    def num_frames(self) -> int:
        return max(2, round(self.duration * self.fps))

    @property
    def class_table(self) -> tuple[SynthClass, ...]:
        return CLASSES[: self.classes]

    def mix_of(self, class_name: str) -> tuple[float, float, float]:
        """The (own, other class, background) shares of ``class_name``'s clips."""
        return self.class_audio_mix.get(class_name, self.audio_mix)


def _check_mix(mix, option: str) -> None:
    if len(mix) != len(AUDIO_KINDS) or min(mix) < 0 or abs(sum(mix) - 1.0) > 1e-6:
        raise AvlabelError(
            f"{option} takes three non-negative shares OWN,OTHER,BACKGROUND that sum to 1, got {tuple(mix)}"
        )


@dataclass(frozen=True)
class ClipPlan:
    """What one clip will be: its class, split, and which sound it carries."""

    video_id: str
    class_index: int
    clip_number: int
    split: str
    audio_kind: str  # one of AUDIO_KINDS
    sound: str  # key in avlabel.data.synth.sounds.SOUNDS
    audio_labels: tuple[str, ...]  # AudioSet names of that sound
    sound_source: str  # the class whose sound plays, or "background"

    @property
    def relevant(self) -> bool:
        """The ground truth IMD is judged against: the clip carries its own class's sound."""
        return self.audio_kind == "own"


def plan_clips(config: SynthConfig) -> list[ClipPlan]:
    """Assign every clip a split and a kind of sound, in exact shares per class and split."""
    plans = []
    classes = config.class_table
    for class_index, synth_class in enumerate(classes):
        rng = np.random.default_rng([config.seed, class_index, 1_000_003])
        counts = _split_counts(config.per_class, config.split_fractions)
        splits = np.repeat(np.array(SPLITS), counts)
        kinds = np.empty(config.per_class, dtype=object)
        for split, count in zip(SPLITS, counts, strict=True):
            # round(share x clips) of each kind within the split (largest remainder), in random order.
            members = rng.permutation(np.flatnonzero(splits == split))
            kinds[members] = np.repeat(
                np.array(AUDIO_KINDS), _largest_remainder(count, config.mix_of(synth_class.name))
            )
        for clip_number in range(config.per_class):
            kind = str(kinds[clip_number])
            if kind == "own":
                sound, labels, source = synth_class.sound, synth_class.audio_labels, synth_class.name
            elif kind == "background":
                sound, labels = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
                source = "background"
            else:
                other = classes[(class_index + 1 + rng.integers(len(classes) - 1)) % len(classes)]
                sound, labels, source = other.sound, other.audio_labels, other.name
            plans.append(
                ClipPlan(
                    video_id=f"{_slug(synth_class.name)}_{clip_number:04d}",
                    class_index=class_index,
                    clip_number=clip_number,
                    split=str(splits[clip_number]),
                    audio_kind=kind,
                    sound=sound,
                    audio_labels=tuple(labels),
                    sound_source=source,
                )
            )
    return plans


def render_plan(plan: ClipPlan, config: SynthConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """The frames ``(T, H, W, 3)`` uint8, audio ``(S,)`` float32 and random draws of one clip."""
    synth_class = config.class_table[plan.class_index]
    visual_rng = np.random.default_rng([config.seed, plan.class_index, plan.clip_number, 0])
    audio_rng = np.random.default_rng([config.seed, plan.class_index, plan.clip_number, 1])
    frames, draws = render_visual(
        visual_rng, synth_class, plan.class_index, config.classes, config.num_frames, config.fps, config.visual
    )
    num_samples = round(config.num_frames / config.fps * config.sample_rate)
    peak = audio_rng.uniform(*config.loudness)
    audio = render_sound(plan.sound, audio_rng, num_samples, config.sample_rate, peak)
    return frames, audio, {**draws, "peak": round(float(peak), 4)}


def generate_benchmark(
    out: str | os.PathLike[str],
    config: SynthConfig,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write the benchmark into ``out`` and return a summary (clips, seconds, bytes).

    A folder holding an earlier benchmark (it has ``synth.json``) is overwritten file by file;
    any other non-empty folder is refused.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "synth.json").is_file():
        raise AvlabelError(f"{out} is not empty and holds no synthetic benchmark; choose a new or empty --out")
    started = time.perf_counter()
    plans = plan_clips(config)
    tasks = [(plan, config, out / _video_path(plan, config)) for plan in plans]
    draws: list[dict] = []
    if workers <= 1:
        results = map(_clip_task, tasks)
    else:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
        results = pool.map(_clip_task, tasks, chunksize=4)
    try:
        for done, result in enumerate(results, start=1):
            draws.append(result)
            if progress:
                progress(done, len(tasks))
    finally:
        if workers > 1:
            pool.shutdown(cancel_futures=True)

    classes = config.class_table
    records = [
        ClipRecord(plan.video_id, out / _video_path(plan, config), classes[plan.class_index].name, plan.split)
        for plan in plans
    ]
    write_manifest(records, out / "manifest.csv")
    atomic_write_text(out / "classes.txt", "".join(f"{synth_class.name}\n" for synth_class in classes))
    tags = "video_id,audio_labels,relevant\n" + "".join(
        f'{plan.video_id},"{";".join(plan.audio_labels)}",{int(plan.relevant)}\n' for plan in plans
    )
    atomic_write_text(out / "audio_tags.csv", tags)
    atomic_write_json(out / "synth.json", _describe(config, plans, draws))
    total_bytes = sum(path.stat().st_size for _, _, path in tasks)
    return {"clips": len(plans), "seconds": time.perf_counter() - started, "bytes": total_bytes, "out": str(out)}


def _clip_task(task: tuple[ClipPlan, SynthConfig, Path]) -> dict:
    from avlabel.data.writer import write_clip

    plan, config, path = task
    frames, audio, draws = render_plan(plan, config)
    write_clip(
        path,
        frames,
        fps=config.fps,
        audio=audio,
        sample_rate=config.sample_rate,
        video_codec="libx264",
        audio_codec="aac",
        video_options=config.video_options,
        audio_options=config.audio_options,
    )
    return draws


def _describe(config: SynthConfig, plans: list[ClipPlan], draws: list[dict]) -> dict:
    """The JSON record: parameters, class table, background sounds, per-clip plan and draws."""
    return {
        "avlabel_version": __version__,
        "config": {**asdict(config), "visual": config.visual.describe()},
        "num_frames": config.num_frames,
        "video": {
            "container": "mp4",
            "codec": "libx264 (yuv420p, single-threaded)",
            "audio_codec": "aac",
            "size": [config.visual.size, config.visual.size],
        },
        "classes": [asdict(synth_class) for synth_class in config.class_table],
        "backgrounds": [{"sound": sound, "audio_labels": list(labels)} for sound, labels in BACKGROUNDS],
        "clips": [
            {
                "video_id": plan.video_id,
                "label": config.class_table[plan.class_index].name,
                "split": plan.split,
                "relevant": plan.relevant,
                "audio_kind": plan.audio_kind,
                "sound": plan.sound,
                "sound_source": plan.sound_source,
                "audio_labels": list(plan.audio_labels),
                **clip_draws,
            }
            for plan, clip_draws in zip(plans, draws, strict=True)
        ],
    }


def _largest_remainder(total: int, weights) -> np.ndarray:
    """Integers proportional to ``weights`` that sum to ``total`` (largest-remainder rounding)."""
    weights = np.asarray(weights, dtype=np.float64)
    raw = weights / weights.sum() * total if weights.sum() > 0 else np.zeros_like(weights)
    counts = np.floor(raw).astype(int)
    for index in np.argsort(-(raw - counts), kind="stable")[: total - counts.sum()]:
        counts[index] += 1
    return counts


def _split_counts(total: int, fractions: tuple[float, ...]) -> list[int]:
    """Clips per split: proportional, and at least one in every split with a non-zero fraction."""
    counts = _largest_remainder(total, fractions)
    for index in np.flatnonzero((np.asarray(fractions) > 0) & (counts == 0)):
        counts[int(np.argmax(counts))] -= 1
        counts[index] += 1
    return counts.tolist()


def _slug(label: str) -> str:
    return label.replace(" ", "_")


def _video_path(plan: ClipPlan, config: SynthConfig) -> Path:
    return Path("videos") / _slug(config.class_table[plan.class_index].name) / f"{plan.video_id}.mp4"


def load_synth_description(folder: str | os.PathLike[str]) -> dict:
    """Read ``synth.json`` of a generated benchmark."""
    path = Path(folder) / "synth.json"
    if not path.is_file():
        raise AvlabelError(f"{path} not found; generate the benchmark with `avlabel synth --out {folder}`")
    return json.loads(path.read_text())
