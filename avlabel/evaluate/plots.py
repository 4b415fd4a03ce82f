"""Evaluation figures as matplotlib PNGs (Agg backend: no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from avlabel._io import atomic_path

# Above this many classes tick labels become unreadable; the matrix is drawn without them.
_MAX_LABELLED_CLASSES = 60


def plot_confusion(
    confusion: np.ndarray, classes: Sequence[str], path: str | os.PathLike[str], title: str = ""
) -> None:
    """Draw the row-normalised confusion matrix (row = true class, column = predicted) to ``path``.

    Rows are normalised so every class reads as its recall whatever its support; classes absent
    from the evaluated split stay blank.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    support = confusion.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.where(support > 0, confusion / support, np.nan)
    num_classes = len(classes)
    side = min(4 + 0.3 * num_classes, 30)
    figure, axes = plt.subplots(figsize=(side + 1.5, side))
    image = axes.imshow(normalised, vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class")
    if num_classes <= _MAX_LABELLED_CLASSES:
        axes.set_xticks(range(num_classes), classes, rotation=90, fontsize=8)
        axes.set_yticks(range(num_classes), classes, fontsize=8)
        if num_classes <= 20:  # small matrices: print the counts in the cells
            for true, predicted in zip(*np.nonzero(confusion)):
                value = normalised[true, predicted]
                axes.text(
                    predicted,
                    true,
                    str(confusion[true, predicted]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if value > 0.5 else "white",
                )
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title or "confusion matrix (rows normalised)")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)
