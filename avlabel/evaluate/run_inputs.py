"""The inputs of a trained run, rebuilt as training saw them: clip settings, label set, clips and audio.

Evaluation and prediction read clips through the same `VideoClipDataset`
(test mode) and audio cache (`ClipAudio`) that training used: T frames
at the run's stride and size, RGB normalised with the mean and std stored in the checkpoint's
model config, flow from the run's flow folder (or computed on the fly), and the frozen-AST
embedding of the audio under each clip (with its time tokens for a model that reads them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from avlabel.errors import AvlabelError
from avlabel.evaluate.multiview import ViewGrid

if TYPE_CHECKING:
    from avlabel.data.manifest import Manifest
    from avlabel.labels import LabelSet
    from avlabel.train.checkpoint import LoadedRun


@dataclass
class ClipSettings:
    """How clips are cut for the model: the run's data settings (or the model's, for a bare checkpoint)."""

    frames: int
    stride: int
    size: int
    sample_fps: float | None
    decode_short_side: int | None
    flow_dir: str | None
    audio_dir: str | None


def clip_settings(
    loaded: LoadedRun, flow_dir: str | os.PathLike[str] | None, audio_dir: str | os.PathLike[str] | None
) -> ClipSettings:
    config = loaded.train_config
    run_dir = run_dir_of(loaded.checkpoint_path, loaded.checkpoint_path)
    if config is None and run_dir is not None:  # a checkpoint file inside a run directory
        from avlabel.train.config import load_config

        config = load_config(run_dir / "config.yaml")
    if config is None:  # a weights file alone: the model config knows T and the size
        settings = ClipSettings(loaded.model_config.num_frames, 8, loaded.model_config.img_size, None, None, None, None)
    else:
        data = config.data
        settings = ClipSettings(
            data.frames,
            data.stride,
            data.size,
            data.sample_fps,
            data.decode_short_side,
            data.flow_dir,
            config.audio.cache,
        )
    if flow_dir is not None:
        settings.flow_dir = str(flow_dir)
    if audio_dir is not None:
        settings.audio_dir = str(audio_dir)
    if loaded.model_config.has_audio and settings.audio_dir is None:
        raise AvlabelError(
            f"model {loaded.model_config.name!r} uses audio but no audio cache is known for it; pass --audio DIR "
            "(the `avlabel targets -o DIR` directory of these videos)"
        )
    return settings


def model_label_set(loaded: LoadedRun) -> LabelSet:
    from avlabel.labels import LabelSet

    return LabelSet(name=loaded.label_set or "checkpoint", labels=tuple(loaded.classes))


def check_known_classes(manifest: Manifest, label_set: LabelSet, where: str) -> None:
    unknown = []
    for label in dict.fromkeys(record.label for record in manifest):
        try:
            label_set.index(label)
        except AvlabelError:
            unknown.append(label)
    if unknown:
        shown = ", ".join(repr(label) for label in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise AvlabelError(
            f"{where} has {len(unknown)} class(es) the model does not know: {shown}; the model was trained on "
            f"label set {label_set.name!r} ({len(label_set)} classes) — evaluate on a manifest of that label set"
        )


def clip_dataset(
    loaded: LoadedRun,
    manifest: Manifest,
    label_set: LabelSet,
    grid: ViewGrid,
    settings: ClipSettings,
    error_log: Path | None,
):
    from avlabel.data.dataset import VideoClipDataset

    visual = list(loaded.model_config.visual_modalities)
    if not visual:
        return None
    if grid.spatial_crops not in (1, 3):
        raise AvlabelError(f"--views {grid}: the number of spatial crops must be 1 (centre) or 3 (left/centre/right)")
    return VideoClipDataset(
        manifest,
        label_set,
        mode="test",
        modalities=visual,
        num_frames=settings.frames,
        stride=settings.stride,
        sample_fps=settings.sample_fps,
        num_clips=grid.temporal_clips,
        num_crops=grid.spatial_crops,
        size=settings.size,
        flow_dir=settings.flow_dir,
        flow_on_the_fly=settings.flow_dir is None,
        decode_short_side=settings.decode_short_side,
        error_log=error_log,
        rgb_mean=loaded.model_config.rgb_mean,
        rgb_std=loaded.model_config.rgb_std,
    )


def clip_audio(loaded: LoadedRun, manifest: Manifest, label_set: LabelSet, audio_dir: str):
    """The split's `ClipAudio`, after checking the cache fits the model."""
    from avlabel.audio.cache import AudioCache, read_bad_items
    from avlabel.audio.targets import RelevanceTargets
    from avlabel.train.items import ClipAudio

    cache = AudioCache(audio_dir)
    cache.check_sources(
        manifest,
        manifest.path,
        fix=f"pass --audio DIR, the cache built for it (avlabel targets --manifest {manifest.path} -o DIR)",
    )
    targets = RelevanceTargets.load(audio_dir)
    video_labels = targets.meta.get("video_labels", {})
    if video_labels.get("sha256") not in (None, label_set.sha256):
        raise AvlabelError(
            f"the relevance targets in {audio_dir} were computed for label set {video_labels.get('name')!r}, not for the "
            f"model's {label_set.name!r}; pass the --audio cache built for this label set"
        )
    audio = ClipAudio(audio_dir, [record.video_id for record in manifest], cache, targets, read_bad_items(audio_dir))
    model_config = loaded.model_config
    width, what = cache.dim, "embeddings"
    if model_config.reads_audio_tokens:
        audio.require_tokens(model_config.name)
        width, what = audio.token_shape[1], "tokens"
    if width != model_config.audio_dim:
        raise AvlabelError(
            f"the audio cache {audio_dir} holds {width}-d {what} but the model expects {model_config.audio_dim}-d; "
            "pass the --audio cache built with the embedder the model was trained with"
        )
    return audio


def run_dir_of(run: Path, weights: Path) -> Path | None:
    """The run directory ``run`` names, or the one its checkpoint file ``weights`` sits in (None for a loose file)."""
    if run.is_dir():
        return run
    candidate = weights.parent.parent  # RUN_DIR/checkpoints/x.safetensors
    return candidate if (candidate / "config.yaml").is_file() else None
