"""What ``avlabel targets`` tells a researcher about the relevance targets it wrote.

Which classes are audio-relevant, how the targets are spread, and how many clips the relevance
threshold alpha (Eq. 5; the paper tries 0.25, 0.5 and 0.75 in Table 4) would keep: a class whose
clips almost all fall under alpha will be trained mostly without audio. When the tags file says
which clips are relevant (the synthetic benchmark does), the report also measures how well the
thresholded targets recover that ground truth.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avlabel._io import atomic_path
from avlabel.audio.decode import AudioStatus

ALPHAS = (0.25, 0.5, 0.75)
_BINS = 20
_CLASSES_SHOWN = 25  # per end of the ranking in the class plot


def relevance_report(
    values: np.ndarray,
    classes: np.ndarray,
    status: np.ndarray,
    video_labels: Sequence[str],
    relevant: np.ndarray | None = None,
    alphas: Sequence[float] = ALPHAS,
) -> dict:
    """Summary statistics of per-row own-class targets.

    Args:
        values: ``(n,)`` targets of the manifest's cache rows.
        classes: ``(n,)`` video class index of each row.
        status: ``(n,)`` `AudioStatus` code of each row.
        video_labels: class names of the video label set.
        relevant: ``(n,)`` known 0/1 relevance per row, ``-1`` where unknown; None when not given.
        alphas: thresholds to report.
    """
    values = np.asarray(values, dtype=np.float64)
    counts, edges = np.histogram(values, bins=_BINS, range=(0.0, 1.0))
    num_classes = len(video_labels)
    class_rows = np.bincount(classes, minlength=num_classes)
    class_sum = np.bincount(classes, weights=values, minlength=num_classes)
    class_audio = np.bincount(classes, weights=(status == AudioStatus.OK), minlength=num_classes)
    present = class_rows > 0
    per_class = [
        {
            "label": video_labels[c],
            "rows": int(class_rows[c]),
            "mean_relevance": float(class_sum[c] / class_rows[c]),
            "fraction_with_audio": float(class_audio[c] / class_rows[c]),
        }
        for c in np.flatnonzero(present)
    ]
    per_class.sort(key=lambda entry: -entry["mean_relevance"])
    report = {
        "rows": len(values),
        "status_counts": {status_code.name.lower(): int((status == status_code).sum()) for status_code in AudioStatus},
        "mean_target": float(values.mean()) if len(values) else 0.0,
        "fraction_at_least": {str(alpha): float((values >= alpha).mean()) if len(values) else 0.0 for alpha in alphas},
        "histogram": {"edges": [float(edge) for edge in edges], "counts": [int(count) for count in counts]},
        "per_class": per_class,
    }
    if relevant is not None:
        report["agreement_with_tags_relevant"] = _agreement(values, np.asarray(relevant), alphas)
    return report


def _agreement(values: np.ndarray, relevant: np.ndarray, alphas: Sequence[float]) -> dict:
    known = relevant >= 0
    truth = relevant[known] == 1
    out = {"rows": int(known.sum())}
    for alpha in alphas:
        kept = values[known] >= alpha
        true_positive = int((kept & truth).sum())
        out[str(alpha)] = {
            "accuracy": float((kept == truth).mean()) if known.any() else 0.0,
            "precision": true_positive / int(kept.sum()) if kept.any() else 0.0,
            "recall": true_positive / int(truth.sum()) if truth.any() else 0.0,
        }
    return out


def plot_report(report: dict, directory: str | os.PathLike[str]) -> list[Path]:
    """Write ``target_histogram.png`` and ``class_relevance.png``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    directory = Path(directory)
    written = []

    edges = np.asarray(report["histogram"]["edges"])
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.bar(
        edges[:-1],
        report["histogram"]["counts"],
        width=np.diff(edges),
        align="edge",
        color="#4c72b0",
        edgecolor="white",
    )
    for alpha, fraction in report["fraction_at_least"].items():
        axes.axvline(float(alpha), color="#c44e52", linestyle="--", linewidth=1)
        axes.text(float(alpha), axes.get_ylim()[1] * 0.95, f" α={alpha}: {fraction:.0%} kept", fontsize=8, va="top")
    axes.set(xlabel="relevance target", ylabel="audio windows", title=f"Relevance targets ({report['rows']} windows)")
    written.append(_save(figure, directory / "target_histogram.png"))

    per_class = report["per_class"]
    if len(per_class) > 2 * _CLASSES_SHOWN:
        shown = per_class[:_CLASSES_SHOWN] + per_class[-_CLASSES_SHOWN:]
        title = f"Most and least audio-relevant classes ({_CLASSES_SHOWN} each of {len(per_class)})"
    else:
        shown, title = per_class, "Mean relevance per class"
    figure, axes = plt.subplots(figsize=(7, max(3, 0.22 * len(shown) + 1)))
    positions = np.arange(len(shown))[::-1]
    axes.barh(positions, [entry["mean_relevance"] for entry in shown], color="#55a868")
    axes.set_yticks(positions, [entry["label"] for entry in shown], fontsize=7)
    axes.set(xlabel="mean relevance target", xlim=(0, 1), title=title)
    written.append(_save(figure, directory / "class_relevance.png"))
    return written


def _save(figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)
    return path
