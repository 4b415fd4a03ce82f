"""Metric functions against hand-computed cases, with scikit-learn as a cross-check."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from avlabel.evaluate.metrics import (
    confusion_matrix,
    json_safe,
    mean_class_accuracy,
    per_class_accuracy,
    precision_recall,
    relevance_metrics,
    roc_auc,
    topk_accuracy,
)


def test_topk_accuracy_hand_computed():
    scores = np.array(
        [
            [0.1, 0.7, 0.2],  # true 1: rank 0
            [0.5, 0.3, 0.2],  # true 2: rank 2
            [0.3, 0.4, 0.3],  # true 0: rank 1 (class 1 higher; class 2 tied but after)
            [0.2, 0.2, 0.6],  # true 1: rank 2 (class 2 higher, class 0 tied and before)
        ]
    )
    labels = np.array([1, 2, 0, 1])
    assert topk_accuracy(scores, labels, ks=(1, 2, 3, 5)) == {1: 0.25, 2: 0.5, 3: 1.0, 5: 1.0}


def test_topk_constant_scores_are_not_all_correct():
    # A model that outputs the same score for every class must not get credit for every class.
    scores = np.zeros((4, 5))
    labels = np.array([0, 1, 2, 3])
    assert topk_accuracy(scores, labels, ks=(1, 2))[1] == 0.25
    assert topk_accuracy(scores, labels, ks=(1, 2))[2] == 0.5


def test_topk_matches_sklearn_on_random_scores():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(200, 10))
    labels = rng.integers(0, 10, size=200)
    ours = topk_accuracy(scores, labels, ks=(1, 3, 5))
    for k in (1, 3, 5):
        assert ours[k] == pytest.approx(skm.top_k_accuracy_score(labels, scores, k=k, labels=range(10)))


def test_confusion_and_class_accuracy():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 0, 1, 1, 0])
    confusion = confusion_matrix(labels, predictions, num_classes=4)
    expected = np.array([[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(confusion, expected)
    np.testing.assert_array_equal(confusion, skm.confusion_matrix(labels, predictions, labels=range(4)))
    accuracy = per_class_accuracy(confusion)
    np.testing.assert_allclose(accuracy[:3], [2 / 3, 1.0, 0.0])
    assert math.isnan(accuracy[3])  # class 3 never occurs: undefined, not 0
    assert mean_class_accuracy(confusion) == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)


def test_roc_auc_hand_computed_with_ties():
    # positives: 0.8, 0.4; negatives: 0.4, 0.1. Pairs: (0.8>0.4) (0.8>0.1) (0.4=0.4 -> 1/2) (0.4>0.1)
    scores = np.array([0.8, 0.4, 0.4, 0.1])
    positives = np.array([1, 1, 0, 0], dtype=bool)
    assert roc_auc(scores, positives) == pytest.approx(3.5 / 4)


def test_roc_auc_matches_sklearn_and_handles_one_class():
    rng = np.random.default_rng(1)
    scores = np.round(rng.random(300), 2)  # rounded: many ties
    positives = rng.random(300) < scores
    assert roc_auc(scores, positives) == pytest.approx(skm.roc_auc_score(positives, scores))
    assert math.isnan(roc_auc(scores, np.ones(300, dtype=bool)))


def test_precision_recall_hand_computed():
    scores = np.array([0.9, 0.6, 0.3, 0.2, 0.7])
    positives = np.array([1, 0, 1, 0, 1], dtype=bool)
    # predicted (>= 0.5): 0.9 (TP), 0.6 (FP), 0.7 (TP) -> precision 2/3; recall 2/3
    assert precision_recall(scores, positives, 0.5) == pytest.approx((2 / 3, 2 / 3))
    precision, recall = precision_recall(scores, positives, 0.95)
    assert math.isnan(precision) and recall == 0.0


def test_relevance_metrics_against_targets_and_flags():
    scores = np.array([0.9, 0.1, 0.6, 0.2])
    keep = np.array([1.0, 0.0, 1.0, 0.5])  # fraction of views kept
    targets = np.array([0.8, 0.0, 0.3, np.nan])  # last item has no target
    relevant = np.array([1, 0, 0, 1])
    result = relevance_metrics(scores, keep, alpha=0.25, targets=targets, target_threshold=0.5, relevant=relevant)
    assert result["mean_score"] == pytest.approx(0.45)
    assert result["drop_rate"] == pytest.approx(1 - 2.5 / 4)
    vs_targets = result["vs_targets"]
    assert vs_targets["count"] == 3 and vs_targets["positives"] == 1
    assert vs_targets["roc_auc"] == 1.0  # 0.9 above 0.1 and 0.6
    assert vs_targets["precision"] == pytest.approx(0.5)  # kept at 0.25: 0.9 (pos), 0.6 (neg)
    assert vs_targets["recall"] == 1.0
    assert result["items_with_audio"] == 4
    vs_relevant = result["vs_relevant"]
    assert vs_relevant["roc_auc"] == pytest.approx(0.75)  # pos {0.9, 0.2} vs neg {0.1, 0.6}: 3 of 4 pairs
    assert vs_relevant["precision"] == pytest.approx(0.5) and vs_relevant["recall"] == pytest.approx(0.5)


def test_json_safe_makes_strict_json():
    value = {"a": math.nan, "b": np.float32(0.5), "c": np.array([1, 2]), "d": [np.inf, 1]}
    text = json.dumps(json_safe(value), allow_nan=False)
    assert json.loads(text) == {"a": None, "b": 0.5, "c": [1, 2], "d": [None, 1]}


def test_relevance_metrics_leave_out_items_without_audio():
    scores = np.array([0.9, np.nan, 0.1])  # the second item has no audible audio
    result = relevance_metrics(scores, np.array([1.0, 0.0, 0.0]), alpha=0.5, relevant=np.array([1, 1, 0]))
    assert result["items_with_audio"] == 2
    assert result["mean_score"] == pytest.approx(0.5) and result["drop_rate"] == pytest.approx(0.5)
    assert result["vs_relevant"] == {"roc_auc": 1.0, "precision": 1.0, "recall": 1.0, "positives": 1, "count": 2}


def test_retrieval_recall_ranks_each_counterpart_among_all_candidates():
    from avlabel.evaluate.metrics import retrieval_recall

    video = np.eye(4)[:, :3]  # videos 0-2 along the axes; video 3 has no audio
    audio = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 0, 1.0], [np.nan] * 3])  # audio 1 sounds like video 2
    result = retrieval_recall(video, audio, ks=(1, 2))
    assert result["videos"] == 3 and result["chance_r1"] == pytest.approx(1 / 3)
    # video -> audio: video 0 finds audio 0. Video 1 scores every audio 0, and a tie counts
    # against it when a lower index shares it (audio 0): second. Video 2 ties audios 1 and 2: second.
    assert result["video_to_audio"] == {"r1": pytest.approx(1 / 3), "r2": 1.0}
    # audio -> video: audio 1 finds video 2 first and ties video 0 before its own: third.
    assert result["audio_to_video"] == {"r1": pytest.approx(2 / 3), "r2": pytest.approx(2 / 3)}


def test_matching_accuracy_judges_own_and_other_audio_at_one_half():
    from avlabel.evaluate.metrics import matching_accuracy

    result = matching_accuracy(np.array([0.9, 0.4, 0.7, np.nan]), np.array([0.2, 0.1, 0.6, 0.3]))
    assert result == {
        "pairs": 6,
        "accuracy": pytest.approx(4 / 6),
        "positive_accuracy": pytest.approx(2 / 3),
        "negative_accuracy": pytest.approx(2 / 3),
        # own vs other over the 3 x 3 known pairs: 0.9 and 0.7 beat all three, 0.4 beats 0.2 and 0.1
        "roc_auc": pytest.approx(8 / 9),
    }


def test_matching_roc_auc_ranks_pairs_whatever_the_threshold():
    from avlabel.evaluate.metrics import matching_accuracy

    # every probability below one half, yet own audio always scores above other audio
    result = matching_accuracy(np.array([0.40, 0.30, 0.35]), np.array([0.10, 0.20, 0.25]))
    assert result["accuracy"] == pytest.approx(0.5) and result["positive_accuracy"] == 0.0
    assert result["roc_auc"] == 1.0
