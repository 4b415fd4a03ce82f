"""The targets report: histogram, kept fractions per alpha, per-class relevance, agreement, plots."""

from __future__ import annotations

import numpy as np
import pytest

from avlabel.audio.report import plot_report, relevance_report


def test_report_statistics_and_plots(tmp_path):
    values = np.array([0.0, 0.3, 0.6, 1.0, 0.0])
    classes = np.array([0, 0, 1, 1, 1])
    status = np.array([1, 0, 0, 0, 3], np.uint8)
    relevant = np.array([0, 1, 1, 1, -1])
    report = relevance_report(values, classes, status, ["drums", "birds", "unused"], relevant)
    assert report["rows"] == 5 and report["mean_target"] == pytest.approx(0.38)
    assert report["fraction_at_least"] == {"0.25": 0.6, "0.5": 0.4, "0.75": 0.2}
    assert report["status_counts"] == {"ok": 3, "no_audio_stream": 1, "empty": 0, "silent": 1}
    assert sum(report["histogram"]["counts"]) == 5 and len(report["histogram"]["edges"]) == 21
    assert [c["label"] for c in report["per_class"]] == ["birds", "drums"]  # most relevant first; unused absent
    assert report["per_class"][0] == {
        "label": "birds",
        "rows": 3,
        "mean_relevance": pytest.approx(1.6 / 3),
        "fraction_with_audio": pytest.approx(2 / 3),
    }
    agreement = report["agreement_with_tags_relevant"]
    assert agreement["rows"] == 4
    assert agreement["0.25"] == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0}
    assert agreement["0.75"] == {"accuracy": 0.5, "precision": 1.0, "recall": pytest.approx(1 / 3)}
    written = plot_report(report, tmp_path)
    assert [path.name for path in written] == ["target_histogram.png", "class_relevance.png"]
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in written)


def test_class_plot_of_many_classes_shows_both_ends(tmp_path):
    classes = np.arange(400)
    report = relevance_report(classes / 400, classes, np.zeros(400, np.uint8), [f"class {c}" for c in range(400)])
    assert report["per_class"][0]["label"] == "class 399"
    plot_report(report, tmp_path)
    assert (tmp_path / "class_relevance.png").stat().st_size > 10_000
