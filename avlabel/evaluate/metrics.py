"""Classification and relevance metrics, vectorised over a whole evaluation set in NumPy.

Classification (paper section 4.1 reports top-1/top-5): `topk_accuracy`,
`confusion_matrix`, `per_class_accuracy`, `mean_class_accuracy`.

Relevance (the IMD relevance network of Eq. 4 and the threshold alpha of Eq. 5): the score
``rev`` is a sigmoid output; the network keeps the audio when ``rev >= alpha``. It is judged
against a binary truth, either the relevance targets of section 3.5 binarised at a threshold or
the synthetic benchmark's ground-truth ``relevant`` flags: `roc_auc` (threshold-free
ranking quality) and `precision_recall` (quality of the keep decision at alpha), both
gathered by `relevance_metrics`.

Audio-video correspondence (models that expose contrastive embeddings or a matching head, AVT):
`retrieval_recall` ranks every audio for every video (and the other way round) by cosine
similarity, `matching_accuracy` judges the matching head on each video's own audio and on
another video's.

Undefined values (the recall of a set without positives, the AUC of a one-class set) are NaN;
`json_safe` turns them into ``None`` for strict JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def _true_class_rank(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rank (0 = best) of each row's true class, ties broken by the lower class index.

    This is the position the true class takes in ``np.argsort(-scores, kind="stable")``, computed
    without sorting: a constant score vector therefore ranks class 0 first instead of crediting
    every class (a tie-optimistic rule would give a constant model 100% top-1).
    """
    true_scores = np.take_along_axis(scores, labels[:, None], axis=1)  # (N, 1)
    class_index = np.arange(scores.shape[1])[None, :]  # (1, C)
    higher = (scores > true_scores).sum(axis=1)
    tied_before = ((scores == true_scores) & (class_index < labels[:, None])).sum(axis=1)
    return higher + tied_before


def _check_scores_labels(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    labels = np.asarray(labels, dtype=np.int64)
    assert scores.ndim == 2 and labels.shape == (scores.shape[0],), (scores.shape, labels.shape)
    assert labels.size == 0 or (labels.min() >= 0 and labels.max() < scores.shape[1]), "label out of range"
    return scores, labels


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Fraction of rows whose true class is among the ``k`` highest scores, for each ``k``.

    Args:
        scores: ``(N, C)`` class scores (logits or probabilities; only their order matters).
        labels: ``(N,)`` true class indices.
        ks: the ``k`` values; a ``k`` larger than ``C`` counts every row as correct.

    Returns:
        ``{k: accuracy}`` with accuracies in [0, 1] (NaN for an empty set).
    """
    scores, labels = _check_scores_labels(scores, labels)
    if labels.size == 0:
        return {k: math.nan for k in ks}
    rank = _true_class_rank(scores, labels)
    return {k: float((rank < k).mean()) for k in ks}


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts; row = true class, column = predicted class."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    assert labels.shape == predictions.shape
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """``(C,)`` recall of each class (diagonal over row sums); NaN for classes with no samples."""
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(confusion) / support, np.nan)


def mean_class_accuracy(confusion: np.ndarray) -> float:
    """Mean of `per_class_accuracy` over the classes that occur (NaN when none do)."""
    accuracy = per_class_accuracy(confusion)
    present = ~np.isnan(accuracy)
    return float(accuracy[present].mean()) if present.any() else math.nan


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` with ties given their average rank (as scipy's ``rankdata``)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1  # rank of the first member of each tie group
    return (first_rank + (counts - 1) / 2.0)[inverse]


def roc_auc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the binary truth ``positives``.

    Computed as the Mann-Whitney U statistic (the probability that a random positive scores above
    a random negative, ties counting one half). NaN when only one class is present.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positives = np.asarray(positives, dtype=bool).ravel()
    assert scores.shape == positives.shape
    n_pos = int(positives.sum())
    n_neg = positives.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    rank_sum = _average_ranks(scores)[positives].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def precision_recall(scores: np.ndarray, positives: np.ndarray, threshold: float) -> tuple[float, float]:
    """Precision and recall of the decision ``scores >= threshold`` against ``positives``.

    Precision is NaN when nothing is predicted positive, recall when there are no positives.
    """
    predicted = np.asarray(scores, dtype=np.float64).ravel() >= threshold
    positives = np.asarray(positives, dtype=bool).ravel()
    assert predicted.shape == positives.shape
    true_pos = int((predicted & positives).sum())
    n_predicted, n_pos = int(predicted.sum()), int(positives.sum())
    precision = true_pos / n_predicted if n_predicted else math.nan
    recall = true_pos / n_pos if n_pos else math.nan
    return precision, recall


def relevance_agreement(scores: np.ndarray, positives: np.ndarray, threshold: float) -> dict[str, float | int]:
    """ROC-AUC, precision and recall of relevance ``scores`` against a binary truth.

    Args:
        scores: ``(N,)`` relevance scores in [0, 1].
        positives: ``(N,)`` bool, True where the audio truly is relevant.
        threshold: the keep threshold alpha; precision/recall judge ``scores >= threshold``.
    """
    precision, recall = precision_recall(scores, positives, threshold)
    positives = np.asarray(positives, dtype=bool)
    return {
        "roc_auc": roc_auc(scores, positives),
        "precision": precision,
        "recall": recall,
        "positives": int(positives.sum()),
        "count": int(positives.size),
    }


def relevance_metrics(
    scores: np.ndarray,
    keep: np.ndarray,
    alpha: float,
    targets: np.ndarray | None = None,
    target_threshold: float | None = None,
    relevant: np.ndarray | None = None,
) -> dict[str, Any]:
    """The relevance network's behaviour over an evaluation set.

    Items whose score is NaN (no audible audio: the model drops it whatever the score) are left
    out of every figure.

    Args:
        scores: ``(N,)`` relevance scores ``rev`` (Eq. 4), per item or averaged over its views.
        keep: ``(N,)`` bool, or the fraction of an item's views in which the audio was kept (Eq. 5).
        alpha: the model's threshold; precision/recall judge ``scores >= alpha``.
        targets: ``(N,)`` relevance targets in [0, 1] (section 3.5), or None; NaN entries (items
            without a target) are left out.
        target_threshold: targets at or above it count as relevant; defaults to ``alpha``, i.e.
            "would a network that predicted the target exactly have kept the audio".
        relevant: ``(N,)`` ground-truth 0/1 flags (synthetic benchmark), or None; NaN entries
            (unknown) are left out.

    Returns:
        ``mean_score``, ``drop_rate``, ``alpha`` and, when given, ``vs_targets`` /
        ``vs_relevant`` dictionaries from `relevance_agreement`.
    """
    scores = np.asarray(scores, dtype=np.float64)
    audible = ~np.isnan(scores)
    scores = scores[audible]
    keep = np.asarray(keep, dtype=np.float64)[audible]
    result: dict[str, Any] = {
        "alpha": float(alpha),
        "items_with_audio": int(audible.sum()),
        "mean_score": float(scores.mean()) if scores.size else math.nan,
        "drop_rate": float(1.0 - keep.mean()) if keep.size else math.nan,
    }
    if targets is not None:
        targets = np.asarray(targets, dtype=np.float64)[audible]
        known = ~np.isnan(targets)
        threshold = alpha if target_threshold is None else target_threshold
        result["vs_targets"] = {
            "target_threshold": float(threshold),
            "mean_target": float(targets[known].mean()) if known.any() else math.nan,
            **relevance_agreement(scores[known], targets[known] >= threshold, alpha),
        }
    if relevant is not None:
        relevant = np.asarray(relevant, dtype=np.float64)[audible]
        known = ~np.isnan(relevant)
        result["vs_relevant"] = relevance_agreement(scores[known], relevant[known] > 0.5, alpha)
    return result


def retrieval_recall(video: np.ndarray, audio: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[str, Any]:
    """Recall@k of video-to-audio and audio-to-video retrieval by cosine similarity.

    Each video's query is answered from the audio of every video (and each audio's from every
    video); it is right when its own counterpart ranks within the first ``k`` (ties count
    against it unless the counterpart has the lower index, as in `topk_accuracy`). Videos
    without an audio embedding (NaN rows: no audio) take part in neither direction.

    Args:
        video: ``(N, E)`` L2-normalised video embeddings.
        audio: ``(N, E)`` L2-normalised audio embeddings, NaN rows where a video has no audio.

    Returns:
        ``{"videos": n, "chance_r1": 1 / n, "video_to_audio": {"r1": ..., "r5": ...}, "audio_to_video": {...}}``.
    """
    known = ~(np.isnan(video).any(axis=1) | np.isnan(audio).any(axis=1))
    similarity = video[known] @ audio[known].T  # (n, n): video i against audio j
    own = np.arange(len(similarity))
    directions = {"video_to_audio": similarity, "audio_to_video": similarity.T}
    result: dict[str, Any] = {"videos": int(known.sum()), "chance_r1": 1.0 / known.sum() if known.any() else math.nan}
    for name, scores in directions.items():
        recall = topk_accuracy(scores, own, ks) if len(own) else {k: math.nan for k in ks}
        result[name] = {f"r{k}": value for k, value in recall.items()}
    return result


def matching_accuracy(positive: np.ndarray, negative: np.ndarray) -> dict[str, Any]:
    """Accuracy of a matching head at 0.5 on each video's own audio and on another video's, and
    the ROC-AUC of its probability for own against other audio (threshold-free: a head trained on
    one positive per two negatives, ALBEF's ratio, can rank pairs well and still put every
    probability below 0.5).

    Args:
        positive: ``(N,)`` probability that each video and its own audio belong together.
        negative: ``(N,)`` the same for each video and the audio of another video; NaN entries
            (no audio) are left out.
    """
    positive, negative = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    known = ~(np.isnan(positive) | np.isnan(negative))
    matched, rejected = positive[known] >= 0.5, negative[known] < 0.5
    count = int(known.sum())
    return {
        "pairs": 2 * count,
        "accuracy": float((matched.sum() + rejected.sum()) / (2 * count)) if count else math.nan,
        "positive_accuracy": float(matched.mean()) if count else math.nan,
        "negative_accuracy": float(rejected.mean()) if count else math.nan,
        "roc_auc": roc_auc(np.concatenate([positive[known], negative[known]]), np.repeat([True, False], count)),
    }


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf floats replaced by None and NumPy scalars/arrays made plain (strict JSON)."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
