"""``avlabel predict``: one video file classified by a trained run, multi-view as in evaluation.

The audio is embedded on the spot with the embedder recorded in the run's audio cache (the
same frozen AST, or another copy of its weights), over the same windows, so a new file's audio
reaches the model exactly as the cached audio of the training videos did -- time tokens
included, from the same AST pass, for a model that reads them.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np

from avlabel.errors import AvlabelError
from avlabel.evaluate.multiview import ViewGrid
from avlabel.evaluate.run_inputs import clip_dataset, clip_settings, model_label_set
from avlabel.evaluate.views import ViewItems, run_model

if TYPE_CHECKING:
    import torch


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
    settings = clip_settings(loaded, None, audio_dir)
    settings.flow_dir = None if flow_dir is None else str(flow_dir)  # a new file is not in the run's flow folder
    label_set = model_label_set(loaded)
    # The dataset needs a label to index; it is not used for prediction.
    record = ClipRecord(video_id=video.stem, path=video.resolve(), label=loaded.classes[0], split="predict")
    if not loaded.model_config.visual_modalities:
        views = ViewGrid(spatial_crops=1, temporal_clips=views.temporal_clips)
    clips = clip_dataset(loaded, Manifest([record]), label_set, views, settings, None)
    audio, tags, status = (None, None, None)
    reads_tokens = loaded.model_config.reads_audio_tokens
    if loaded.model_config.has_audio:
        audio, tags, status = _embed_one_video(record, settings.audio_dir, ast, device, reads_tokens)
    items = ViewItems(clips, audio, np.zeros(1, dtype=np.int64), [record.video_id], views, audio_tokens=reads_tokens)
    result, skipped = run_model(
        loaded, items, views, device, batch_size=views.count, workers=0, progress=False, description="predict"
    )
    if not result.evaluated[0]:
        raise AvlabelError(
            f"cannot decode {video}: {skipped[0][2] if skipped else 'no frames'}; check the file with ffprobe"
        )
    probabilities = result.probabilities[0]
    best = np.argsort(-probabilities, kind="stable")[:top]
    relevance = None if result.relevance is None or np.isnan(result.relevance[0]) else float(result.relevance[0])
    kept = None if result.keep_fraction is None or np.isnan(result.keep_fraction[0]) else float(result.keep_fraction[0])
    return {
        "video": str(video),
        "views": str(views),
        "top": [(loaded.classes[i], float(probabilities[i])) for i in best],
        "relevance": relevance,
        "alpha": loaded.model_config.imd_alpha
        if loaded.model_config.fusion == "imd" and loaded.model_config.is_audio_visual
        else None,
        "audio_kept": kept,
        "audio_status": status,
        "audio_tags": tags,
    }


class _SingleVideoAudio:
    """The audio windows of one freshly embedded video, shaped like `ClipAudio`."""

    def __init__(self, embedding: np.ndarray, present: np.ndarray, tokens: tuple[np.ndarray, ...] | None):
        self._embedding = embedding  # (W, dim) float32
        self._tokens = tokens  # (W, count, token_dim), (W, count) valid, (W, count) energy; or None
        self.present = present[None, :]  # (1, W)
        self.target = None
        self.num_windows = len(present)

    def embedding(self, row: int, window: int) -> np.ndarray:
        return self._embedding[window]

    def tokens(self, row: int, window: int) -> tuple[np.ndarray, ...]:
        return tuple(array[window] for array in self._tokens)


def _embed_one_video(
    record, audio_dir: str, ast: str | os.PathLike[str] | None, device: torch.device, tokens: bool
) -> tuple[_SingleVideoAudio, list | None, str]:
    """Embed one video's audio windows (and their time tokens) with the run's embedder; returns (audio, top tags, status text)."""
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
        summary = extract_audio(
            [record],
            scratch,
            embedder,
            num_windows=windows["count"],
            window_seconds=windows["seconds"],
            workers=0,
            progress=False,
            tokens=tokens,
        )
        if summary.bad:
            raise AvlabelError(f"cannot read the audio of {record.path}: {summary.bad[0][2]}")
        cache = AudioCache(scratch)
        rows = cache.lookup([record.video_id] * cache.num_windows, np.arange(cache.num_windows))
        embedding, present = cache.read(rows)
        window_tokens = cache.read_tokens(rows) if tokens else None
        status = [AudioStatus(int(code)).name.lower() for code in cache.status[rows]]
        tags = None
        if cache.probs is not None and embedder.labels is not None and present.any():
            mean = cache.probs[rows][present].astype(np.float32).mean(axis=0)
            tags = [(embedder.labels[i], float(mean[i])) for i in np.argsort(-mean)[:5]]
    return _SingleVideoAudio(embedding, present, window_tokens), tags, ", ".join(dict.fromkeys(status))
