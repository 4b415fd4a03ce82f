"""The metrics of an evaluated split: classification (top-1/top-5, class accuracy, confusion), the relevance network's behaviour, and audio-video correspondence.

Relevance is judged by `avlabel.evaluate.metrics.relevance_metrics`: mean score, share of
audio dropped, agreement with the relevance targets and with the synthetic benchmark's
ground-truth ``relevant`` flags (a tags CSV with a ``relevant`` column). A model that exposes
contrastive embeddings gets retrieval recall (`avlabel.evaluate.metrics.retrieval_recall`), one
with a matching head its accuracy on own and other videos' audio
(`avlabel.evaluate.metrics.matching_accuracy`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avlabel.evaluate.multiview import MultiViewResult

if TYPE_CHECKING:
    from avlabel.train.checkpoint import LoadedRun

DEFAULT_TAGS_NAME = "audio_tags.csv"  # what `avlabel synth` writes next to its manifest


def relevant_flags(tags_path: Path | None, video_ids: list[str]) -> np.ndarray | None:
    """``(N,)`` ground-truth relevance (1/0, NaN unknown) from a tags CSV with a ``relevant`` column."""
    if tags_path is None:
        return None
    from avlabel.audio.targets import read_tags
    from avlabel.labels import load_label_set

    tags = read_tags(tags_path, load_label_set("audioset"))
    if not tags.relevant:
        return None
    return np.array([tags.relevant.get(video_id, np.nan) for video_id in video_ids], dtype=np.float64)


def default_tags(manifest: Path) -> Path | None:
    path = manifest.parent / DEFAULT_TAGS_NAME
    return path if path.is_file() else None


def split_metrics(
    loaded: LoadedRun,
    result: MultiViewResult,
    labels: np.ndarray,
    video_ids: list[str],
    relevant: np.ndarray | None,
    target_threshold: float | None,
    negative_match: np.ndarray | None = None,
) -> dict[str, Any]:
    """The metrics.json content of one evaluated split.

    Args:
        negative_match: ``(N,)`` the matching head's probability for each video paired with
            another video's audio (a second pass), when the model has a matching head.
    """
    from avlabel.evaluate.metrics import (
        confusion_matrix,
        matching_accuracy,
        mean_class_accuracy,
        per_class_accuracy,
        relevance_metrics,
        retrieval_recall,
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
        "retrieval": None,
        "matching": None,
    }
    if result.video_embedding is not None:
        metrics["retrieval"] = retrieval_recall(result.video_embedding[evaluated], result.audio_embedding[evaluated])
    if result.match_probability is not None and negative_match is not None:
        metrics["matching"] = matching_accuracy(result.match_probability[evaluated], negative_match[evaluated])
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
