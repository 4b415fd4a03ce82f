"""What ``avlabel eval`` writes: metrics.json, predictions.csv and the confusion-matrix PNG."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from avlabel._io import atomic_write_json, atomic_write_text
from avlabel.evaluate.multiview import MultiViewResult


def write_outputs(
    output_dir: Path,
    metrics: dict,
    result: MultiViewResult,
    labels: np.ndarray,
    video_ids: list[str],
    classes: list[str],
) -> None:
    from avlabel.evaluate.metrics import json_safe
    from avlabel.evaluate.plots import plot_confusion

    atomic_write_json(output_dir / "metrics.json", json_safe(metrics))
    atomic_write_text(output_dir / "predictions.csv", predictions_csv(result, labels, video_ids, classes))
    plot_confusion(
        np.asarray(metrics["confusion_matrix"]),
        classes,
        output_dir / "confusion.png",
        title=f"{metrics['split']} ({metrics['views']} views): top-1 {100 * metrics['top1']:.1f}%",
    )


def predictions_csv(result: MultiViewResult, labels: np.ndarray, video_ids: list[str], classes: list[str]) -> str:
    """One row per evaluated video: truth, top-5 with probabilities, relevance score and kept share."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["video_id", "label", "predicted", "probability", "top5", "relevance", "audio_kept", "relevance_target"]
    )
    order = np.argsort(-np.nan_to_num(result.probabilities, nan=-1.0), axis=1, kind="stable")[:, :5]
    for row in np.flatnonzero(result.evaluated):
        best = order[row]
        cells = [
            video_ids[row],
            classes[labels[row]],
            classes[best[0]],
            f"{result.probabilities[row, best[0]]:.4f}",
            ";".join(classes[i] for i in best),
        ]
        for values in (result.relevance, result.keep_fraction, result.relevance_target):
            cells.append("" if values is None or np.isnan(values[row]) else f"{values[row]:.4f}")
        writer.writerow(cells)
    return buffer.getvalue()
