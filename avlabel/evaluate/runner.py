"""``avlabel eval`` and ``avlabel predict``: a trained run applied to a manifest split or one video.

Both rebuild the model with :func:`avlabel.train.checkpoint.load_run` and read clips through the
same :class:`~avlabel.data.dataset.VideoClipDataset` (test mode) and audio cache
(:class:`~avlabel.train.items.ClipAudio`) that training used, so evaluation sees exactly the
inputs training saw: T frames at the run's stride and size, RGB normalised with the mean and std
stored in the checkpoint's model config, flow from the run's flow folder (or
computed on the fly), and the frozen-AST embedding of the audio window under each clip
(temporal clip ``c`` of ``n`` takes window ``c * W // n`` of the ``W`` cached windows).

Evaluation (paper section 4.1) averages each video's softmax over its views
(:mod:`avlabel.evaluate.multiview`, 3 crops x 4 clips by default) and reports top-1/top-5, mean
class accuracy, per-class accuracy, the confusion matrix, and the relevance network's behaviour
(mean score, share of audio dropped, agreement with the relevance targets and with the synthetic
benchmark's ground-truth ``relevant`` flags; :func:`avlabel.evaluate.metrics.relevance_metrics`).
Videos that cannot be decoded are skipped, counted and listed, never fatal.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avlabel._checks import check_output_dir
from avlabel._io import atomic_write_json, atomic_write_text
from avlabel.errors import AvlabelError
from avlabel.evaluate.multiview import MultiViewResult, ViewGrid

if TYPE_CHECKING:
    import torch

    from avlabel.data.manifest import Manifest
    from avlabel.labels import LabelSet
    from avlabel.train.checkpoint import LoadedRun

DEFAULT_TAGS_NAME = "audio_tags.csv"  # what `avlabel synth` writes next to its manifest


@dataclass
class _ClipSettings:
    """How clips are cut for the model: the run's data settings (or the model's, for a bare checkpoint)."""

    frames: int
    stride: int
    size: int
    sample_fps: float | None
    decode_short_side: int | None
    flow_dir: str | None
    audio_dir: str | None


def _clip_settings(loaded: LoadedRun, flow_dir: str | os.PathLike[str] | None, audio_dir: str | os.PathLike[str] | None) -> _ClipSettings:
    config = loaded.train_config
    run_dir = _run_dir_of(loaded.checkpoint_path, loaded.checkpoint_path)
    if config is None and run_dir is not None:  # a checkpoint file inside a run directory
        from avlabel.train.config import load_config

        config = load_config(run_dir / "config.yaml")
    if config is None:  # a weights file alone: the model config knows T and the size
        settings = _ClipSettings(loaded.model_config.num_frames, 8, loaded.model_config.img_size, None, None, None, None)
    else:
        data = config.data
        settings = _ClipSettings(data.frames, data.stride, data.size, data.sample_fps, data.decode_short_side,
                                 data.flow_dir, config.audio.cache)  # fmt: skip
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


def _model_label_set(loaded: LoadedRun) -> LabelSet:
    from avlabel.labels import LabelSet

    return LabelSet(name=loaded.label_set or "checkpoint", labels=tuple(loaded.classes))


def _check_known_classes(manifest: Manifest, label_set: LabelSet, where: str) -> None:
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


class _SingleVideoAudio:
    """The audio windows of one freshly embedded video, shaped like :class:`~avlabel.train.items.ClipAudio`."""

    def __init__(self, embedding: np.ndarray, present: np.ndarray):
        self._embedding = embedding  # (W, dim) float32
        self.present = present[None, :]  # (1, W)
        self.target = None
        self.num_windows = len(present)

    def embedding(self, row: int, window: int) -> np.ndarray:
        return self._embedding[window]


class ViewItems:
    """Test items: one per ``(video, clip, crop)`` view, with the audio window under the clip.

    Args:
        clips: the split's test-mode ``VideoClipDataset`` (``num_clips x num_crops`` items per
            row), or None for an audio-only model.
        audio: per-row audio (``ClipAudio`` or one embedded video), or None without audio.
        labels: ``(N,)`` class index per row; ``video_ids``: per row.
        grid: crops x clips; for an audio-only model only its clips matter.
    """

    def __init__(self, clips, audio, labels: np.ndarray, video_ids: list[str], grid: ViewGrid):
        self.clips, self.audio, self.labels, self.video_ids, self.grid = clips, audio, labels, video_ids, grid

    def __len__(self) -> int:
        return len(self.labels) * self.grid.count

    def __getitem__(self, item: int) -> dict:
        import torch

        row, view = divmod(item, self.grid.count)
        clip_index, crop_index = divmod(view, self.grid.spatial_crops)
        if self.clips is not None:
            out = self.clips[item]  # same row-major (row, clip, crop) order
        else:
            out = {"label": int(self.labels[row]), "index": row, "video_id": self.video_ids[row],
                   "clip_index": clip_index, "crop_index": crop_index}  # fmt: skip
        if self.audio is not None:
            window = clip_index * self.audio.num_windows // self.grid.temporal_clips
            out["audio"] = torch.from_numpy(np.asarray(self.audio.embedding(row, window), dtype=np.float32))
            out["audio_present"] = bool(self.audio.present[row, window])
            if self.audio.target is not None:
                out["relevance"] = float(self.audio.target[row, window])
        return out


def collate_views(items: list[dict]) -> dict:
    """``collate_clips`` plus the audio fields; unreadable views are dropped and listed in ``skipped``."""
    import torch

    from avlabel.data.dataset import collate_clips

    batch = collate_clips(items)
    good = [item for item in items if "error" not in item]
    if good and "audio" in good[0]:
        batch["audio"] = torch.stack([item["audio"] for item in good])
        batch["audio_present"] = torch.tensor([item["audio_present"] for item in good], dtype=torch.bool)
        if "relevance" in good[0]:
            batch["relevance"] = torch.tensor([item["relevance"] for item in good], dtype=torch.float32)
    return batch


def _clip_dataset(loaded: LoadedRun, manifest: Manifest, label_set: LabelSet, grid: ViewGrid, settings: _ClipSettings,
                  error_log: Path | None):  # fmt: skip
    from avlabel.data.dataset import VideoClipDataset

    visual = list(loaded.model_config.visual_modalities)
    if not visual:
        return None
    if grid.spatial_crops not in (1, 3):
        raise AvlabelError(f"--views {grid}: the number of spatial crops must be 1 (centre) or 3 (left/centre/right)")
    return VideoClipDataset(
        manifest, label_set, mode="test", modalities=visual, num_frames=settings.frames, stride=settings.stride,
        sample_fps=settings.sample_fps, num_clips=grid.temporal_clips, num_crops=grid.spatial_crops, size=settings.size,
        flow_dir=settings.flow_dir, flow_on_the_fly=settings.flow_dir is None,
        decode_short_side=settings.decode_short_side, error_log=error_log,
        rgb_mean=loaded.model_config.rgb_mean, rgb_std=loaded.model_config.rgb_std,
    )  # fmt: skip


def _clip_audio(loaded: LoadedRun, manifest: Manifest, label_set: LabelSet, audio_dir: str):
    """The split's :class:`~avlabel.train.items.ClipAudio`, after checking the cache fits the model."""
    from avlabel.audio.cache import AudioCache, read_bad_items
    from avlabel.audio.targets import RelevanceTargets
    from avlabel.train.items import ClipAudio

    cache = AudioCache(audio_dir)
    cache.check_sources(manifest, manifest.path, fix=f"pass --audio DIR, the cache built for it (avlabel targets --manifest {manifest.path} -o DIR)")
    if cache.dim != loaded.model_config.audio_dim:
        raise AvlabelError(
            f"the audio cache {audio_dir} holds {cache.dim}-d embeddings but the model expects {loaded.model_config.audio_dim}-d; "
            "pass the --audio cache built with the embedder the model was trained with"
        )
    targets = RelevanceTargets.load(audio_dir)
    video_labels = targets.meta.get("video_labels", {})
    if video_labels.get("sha256") not in (None, label_set.sha256):
        raise AvlabelError(
            f"the relevance targets in {audio_dir} were computed for label set {video_labels.get('name')!r}, not for the "
            f"model's {label_set.name!r}; pass the --audio cache built for this label set"
        )
    return ClipAudio(audio_dir, [record.video_id for record in manifest], cache, targets, read_bad_items(audio_dir))


def _relevant_flags(tags_path: Path | None, video_ids: list[str]) -> np.ndarray | None:
    """``(N,)`` ground-truth relevance (1/0, NaN unknown) from a tags CSV with a ``relevant`` column."""
    if tags_path is None:
        return None
    from avlabel.audio.targets import read_tags
    from avlabel.labels import load_label_set

    tags = read_tags(tags_path, load_label_set("audioset"))
    if not tags.relevant:
        return None
    return np.array([tags.relevant.get(video_id, np.nan) for video_id in video_ids], dtype=np.float64)


def _loader(items: ViewItems, batch_size: int, workers: int, device: torch.device):
    from torch.utils.data import DataLoader

    return DataLoader(
        items, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate_views,
        pin_memory=device.type == "cuda", persistent_workers=False,
    )  # fmt: skip


def _model_inputs(device: torch.device) -> Callable[[dict], dict]:
    def inputs(batch: dict) -> dict:
        return {key: batch[key].to(device, non_blocking=True) for key in ("rgb", "flow", "audio", "audio_present") if key in batch}

    return inputs


def _run_model(loaded: LoadedRun, items: ViewItems, grid: ViewGrid, device: torch.device, batch_size: int, workers: int,
               progress: bool, description: str) -> tuple[MultiViewResult, list[tuple[int, str, str]]]:  # fmt: skip
    """All views through the model; returns per-video averages and the skipped ``(row, video_id, error)``."""
    from avlabel._progress import progress_bar
    from avlabel.evaluate.multiview import MultiViewAccumulator, run_views

    skipped: list[tuple[int, str, str]] = []
    accumulator = MultiViewAccumulator(len(items.labels), len(loaded.classes), grid, device)
    with progress_bar(description, total=len(items), disable=not progress) as bar:

        def on_batch(batch: dict) -> None:
            skipped.extend(batch["skipped"])
            bar.advance(len(batch["index"]) + len(batch["skipped"]))

        result = run_views(loaded.model, _loader(items, batch_size, workers, device), accumulator, _model_inputs(device), on_batch)
    return result, skipped


def evaluate_run(
    run: str | os.PathLike[str],
    manifest: str | os.PathLike[str],
    split: str = "test",
    checkpoint: str = "best",
    views: ViewGrid | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    audio_dir: str | os.PathLike[str] | None = None,
    flow_dir: str | os.PathLike[str] | None = None,
    tags: str | os.PathLike[str] | None = None,
    target_threshold: float | None = None,
    device: str = "cpu",
    batch_size: int = 8,
    workers: int = 2,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a trained run on one split of a manifest and write the results.

    Args:
        run: a run directory (or a ``.safetensors`` checkpoint file).
        manifest: the manifest CSV; ``split`` selects its rows.
        checkpoint: "best", "last" or a path (for a run directory).
        views: crops x clips per video (None: the paper's 3 x 4).
        output_dir: where ``metrics.json``, ``predictions.csv``, ``confusion.png`` and
            ``skipped.tsv`` go; default ``RUN_DIR/eval/{split}-{checkpoint}``.
        audio_dir, flow_dir: override the run's audio cache / flow folder (needed when the
            evaluated videos are not those the run was configured with).
        tags: a tags CSV with a ``relevant`` column (default: ``audio_tags.csv`` beside the
            manifest, when it exists) to judge the relevance network against ground truth.
        target_threshold: relevance targets at or above it count as relevant (default: alpha).
        device: torch device; ``batch_size`` views per forward pass; ``workers`` loader processes.
        progress: show a progress bar on stderr.

    Returns:
        The metrics dictionary that was written to ``metrics.json``.

    Raises:
        AvlabelError: no checkpoint, unreadable manifest, unknown split or classes, a cache that
            does not fit the model, or no decodable video at all.
    """
    import torch

    from avlabel.data.manifest import read_manifest
    from avlabel.evaluate.metrics import json_safe
    from avlabel.evaluate.report import eval_dir
    from avlabel.train.checkpoint import load_run, resolve_checkpoint

    views = views or ViewGrid()
    device = torch.device(device)
    weights = resolve_checkpoint(run, checkpoint)
    run_dir = _run_dir_of(Path(run), weights)
    if not Path(run).is_dir():  # a checkpoint file: name the results after it, not after --checkpoint
        checkpoint = weights.name.split(".")[0]
    if output_dir is None:
        if run_dir is None:
            raise AvlabelError(f"{run} is a checkpoint file outside a run directory; pass -o DIR for the results")
        output_dir = eval_dir(run_dir, split, checkpoint)
    output_dir = check_output_dir(output_dir, "-o")
    rows = read_manifest(manifest, check_files=False).split(split)  # before the model loads: a typo fails at once
    loaded = load_run(run, checkpoint=checkpoint, device=str(device))
    settings = _clip_settings(loaded, flow_dir, audio_dir)
    label_set = _model_label_set(loaded)
    _check_known_classes(rows, label_set, f"the {split!r} split of {manifest}")
    video_ids = [record.video_id for record in rows]
    labels = np.array([label_set.index(record.label) for record in rows], dtype=np.int64)
    if not loaded.model_config.visual_modalities:
        views = ViewGrid(spatial_crops=1, temporal_clips=views.temporal_clips)  # audio has no crops

    error_log = output_dir / "skipped.tsv"
    clips = _clip_dataset(loaded, rows, label_set, views, settings, error_log)
    audio = _clip_audio(loaded, rows, label_set, settings.audio_dir) if loaded.model_config.has_audio else None
    items = ViewItems(clips, audio, labels, video_ids, views)
    tags_path = Path(tags) if tags is not None else _default_tags(Path(manifest))
    relevant = _relevant_flags(tags_path, video_ids)
    # Only now that every input passed its checks: a refused evaluation leaves no empty folder.
    output_dir.mkdir(parents=True, exist_ok=True)
    error_log.unlink(missing_ok=True)  # the dataset appends; start this evaluation's list afresh
    result, skipped = _run_model(loaded, items, views, device, batch_size, workers, progress, f"eval {split}")

    evaluated = result.evaluated
    if not evaluated.any():
        raise AvlabelError(f"none of the {len(rows)} videos of split {split!r} could be decoded; see {error_log}")
    metrics = _metrics(loaded, result, labels, video_ids, relevant, target_threshold)
    metrics.update(
        run=str(run_dir or run), checkpoint=str(loaded.checkpoint_path), checkpoint_tag=checkpoint,
        manifest=str(Path(manifest).resolve()), manifest_sha256=rows.sha256, split=split, views=str(views),
        tags=str(tags_path) if tags_path is not None else None, audio_cache=settings.audio_dir,
        skipped_videos=sorted({video_id for _, video_id, _ in skipped}), output_dir=str(output_dir),
    )  # fmt: skip
    _write_outputs(output_dir, metrics, result, labels, video_ids, loaded.classes)
    return json_safe(metrics)


def _run_dir_of(run: Path, weights: Path) -> Path | None:
    """The run directory ``run`` names, or the one its checkpoint file ``weights`` sits in (None for a loose file)."""
    if run.is_dir():
        return run
    candidate = weights.parent.parent  # RUN_DIR/checkpoints/x.safetensors
    return candidate if (candidate / "config.yaml").is_file() else None


def _default_tags(manifest: Path) -> Path | None:
    path = manifest.parent / DEFAULT_TAGS_NAME
    return path if path.is_file() else None


def _metrics(loaded: LoadedRun, result: MultiViewResult, labels: np.ndarray, video_ids: list[str],
             relevant: np.ndarray | None, target_threshold: float | None) -> dict[str, Any]:  # fmt: skip
    from avlabel.evaluate.metrics import (
        confusion_matrix,
        mean_class_accuracy,
        per_class_accuracy,
        relevance_metrics,
        topk_accuracy,
    )

    evaluated = result.evaluated
    probabilities, truth = result.probabilities[evaluated], labels[evaluated]
    top = topk_accuracy(probabilities, truth, ks=(1, 5))
    confusion = confusion_matrix(truth, probabilities.argmax(axis=1), len(loaded.classes))
    per_class = per_class_accuracy(confusion)
    metrics: dict[str, Any] = {
        "videos": len(labels),
        "evaluated": int(evaluated.sum()),
        "incomplete": int((evaluated & ~result.complete).sum()),
        "top1": top[1],
        "top5": top[5],
        "mean_class_accuracy": mean_class_accuracy(confusion),
        "classes": list(loaded.classes),
        "per_class_accuracy": {name: float(value) for name, value in zip(loaded.classes, per_class)},
        "class_support": {name: int(n) for name, n in zip(loaded.classes, confusion.sum(axis=1))},
        "confusion_matrix": confusion.tolist(),
        "model": {
            "name": loaded.model_config.name,
            "fusion": loaded.model_config.fusion if loaded.model_config.is_audio_visual else None,
            "modalities": list(loaded.model_config.modalities),
            "imd_alpha": loaded.model_config.imd_alpha,
            "imd_mode": loaded.model_config.imd_mode,
        },
        "relevance": None,
    }
    if result.relevance is not None:
        metrics["relevance"] = relevance_metrics(
            result.relevance[evaluated],
            result.keep_fraction[evaluated],
            alpha=loaded.model_config.imd_alpha,
            targets=None if result.relevance_target is None else result.relevance_target[evaluated],
            target_threshold=target_threshold,
            relevant=None if relevant is None else relevant[evaluated],
        )
    return metrics


def _write_outputs(output_dir: Path, metrics: dict, result: MultiViewResult, labels: np.ndarray, video_ids: list[str],
                   classes: list[str]) -> None:  # fmt: skip
    from avlabel.evaluate.metrics import json_safe
    from avlabel.evaluate.plots import plot_confusion

    atomic_write_json(output_dir / "metrics.json", json_safe(metrics))
    atomic_write_text(output_dir / "predictions.csv", _predictions_csv(result, labels, video_ids, classes))
    plot_confusion(np.asarray(metrics["confusion_matrix"]), classes, output_dir / "confusion.png",
                   title=f"{metrics['split']} ({metrics['views']} views): top-1 {100 * metrics['top1']:.1f}%")  # fmt: skip


def _predictions_csv(result: MultiViewResult, labels: np.ndarray, video_ids: list[str], classes: list[str]) -> str:
    """One row per evaluated video: truth, top-5 with probabilities, relevance score and kept share."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["video_id", "label", "predicted", "probability", "top5", "relevance", "audio_kept", "relevance_target"])
    order = np.argsort(-np.nan_to_num(result.probabilities, nan=-1.0), axis=1, kind="stable")[:, :5]
    for row in np.flatnonzero(result.evaluated):
        best = order[row]
        cells = [
            video_ids[row], classes[labels[row]], classes[best[0]], f"{result.probabilities[row, best[0]]:.4f}",
            ";".join(classes[i] for i in best),
        ]  # fmt: skip
        for values in (result.relevance, result.keep_fraction, result.relevance_target):
            cells.append("" if values is None or np.isnan(values[row]) else f"{values[row]:.4f}")
        writer.writerow(cells)
    return buffer.getvalue()


def predict_video(
    video: str | os.PathLike[str],
    run: str | os.PathLike[str],
    checkpoint: str = "best",
    views: ViewGrid | None = None,
    audio_dir: str | os.PathLike[str] | None = None,
    flow_dir: str | os.PathLike[str] | None = None,
    ast: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    top: int = 5,
) -> dict[str, Any]:
    """Classify one video file with a trained run (multi-view, as in evaluation).

    The audio is embedded on the spot with the embedder recorded in the run's audio cache (the
    same frozen AST, or ``ast`` when its weights moved), over the same windows.

    Returns:
        ``{"video", "top": [(class, probability)], "relevance", "audio_kept", "audio_status",
        "audio_tags": [(AudioSet label, probability)] | None, "views"}``.

    Raises:
        AvlabelError: no checkpoint, a file that cannot be decoded, or an unusable audio embedder.
    """
    import torch

    from avlabel._checks import check_input_file
    from avlabel.data.decode import open_container
    from avlabel.data.manifest import ClipRecord, Manifest
    from avlabel.train.checkpoint import load_run

    views = views or ViewGrid()
    video = check_input_file(video, "video", "pass a video file")
    open_container(video).close()  # unreadable or not media: one line before the model loads
    device = torch.device(device)
    loaded = load_run(run, checkpoint=checkpoint, device=str(device))
    settings = _clip_settings(loaded, None, audio_dir)
    settings.flow_dir = None if flow_dir is None else str(flow_dir)  # a new file is not in the run's flow folder
    label_set = _model_label_set(loaded)
    # The dataset needs a label to index; it is not used for prediction.
    record = ClipRecord(video_id=video.stem, path=video.resolve(), label=loaded.classes[0], split="predict")
    if not loaded.model_config.visual_modalities:
        views = ViewGrid(spatial_crops=1, temporal_clips=views.temporal_clips)
    clips = _clip_dataset(loaded, Manifest([record]), label_set, views, settings, None)
    audio, tags, status = (None, None, None)
    if loaded.model_config.has_audio:
        audio, tags, status = _embed_one_video(record, settings.audio_dir, ast, device)
    items = ViewItems(clips, audio, np.zeros(1, dtype=np.int64), [record.video_id], views)
    result, skipped = _run_model(loaded, items, views, device, batch_size=views.count, workers=0, progress=False, description="predict")
    if not result.evaluated[0]:
        raise AvlabelError(f"cannot decode {video}: {skipped[0][2] if skipped else 'no frames'}; check the file with ffprobe")
    probabilities = result.probabilities[0]
    best = np.argsort(-probabilities, kind="stable")[:top]
    relevance = None if result.relevance is None or np.isnan(result.relevance[0]) else float(result.relevance[0])
    kept = None if result.keep_fraction is None or np.isnan(result.keep_fraction[0]) else float(result.keep_fraction[0])
    return {
        "video": str(video),
        "views": str(views),
        "top": [(loaded.classes[i], float(probabilities[i])) for i in best],
        "relevance": relevance,
        "alpha": loaded.model_config.imd_alpha if loaded.model_config.fusion == "imd" and loaded.model_config.is_audio_visual else None,
        "audio_kept": kept,
        "audio_status": status,
        "audio_tags": tags,
    }


def _embed_one_video(record, audio_dir: str, ast: str | os.PathLike[str] | None, device: torch.device):
    """Embed one video's audio windows with the run's embedder; returns (audio, top tags, status text)."""
    from avlabel.audio.cache import AudioCache
    from avlabel.audio.decode import AudioStatus
    from avlabel.audio.embedders import build_embedder
    from avlabel.audio.extract import extract_audio

    reference = AudioCache(audio_dir)
    identity = reference.header["embedder"]
    source = ast if ast is not None else identity.get("source")
    embedder = build_embedder(identity["name"], ast=source if identity["name"] == "ast" else None, device=device)
    if embedder.identity.get("fingerprint") != identity.get("fingerprint"):
        raise AvlabelError(
            f"the audio embedder at {source} is not the one the run's audio cache {audio_dir} was built with "
            "(different weights); pass --ast with the checkpoint used by `avlabel targets`"
        )
    windows = reference.header["windows"]
    with tempfile.TemporaryDirectory(prefix="avlabel-predict-") as scratch:
        summary = extract_audio([record], scratch, embedder, num_windows=windows["count"],
                                window_seconds=windows["seconds"], workers=0, progress=False)  # fmt: skip
        if summary.bad:
            raise AvlabelError(f"cannot read the audio of {record.path}: {summary.bad[0][2]}")
        cache = AudioCache(scratch)
        rows = cache.lookup([record.video_id] * cache.num_windows, np.arange(cache.num_windows))
        embedding, present = cache.read(rows)
        status = [AudioStatus(int(code)).name.lower() for code in cache.status[rows]]
        tags = None
        if cache.probs is not None and embedder.labels is not None and present.any():
            mean = cache.probs[rows][present].astype(np.float32).mean(axis=0)
            tags = [(embedder.labels[i], float(mean[i])) for i in np.argsort(-mean)[:5]]
    return _SingleVideoAudio(embedding, present), tags, ", ".join(dict.fromkeys(status))
