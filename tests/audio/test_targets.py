"""Relevance targets: IoU/Dice against hand-computed cases, vectorised look-ups, tags, persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avlabel.audio.targets import (
    RelevanceTargets,
    multi_hot,
    overlap_target,
    read_tags,
    tag_sets,
    top_labels,
)
from avlabel.errors import AvlabelError


@pytest.mark.parametrize(
    ("i", "a", "b", "iou", "dice"),
    [
        # a = Y_a = 20 AST labels, b = k = 10 SAVLD labels (the paper's 10-20).
        (10, 20, 10, 1.0, 1.0),  # B inside A: the best reachable overlap
        (5, 20, 10, (5 / 25) / (10 / 20), 5 / 10),  # IoU 0.2 of at most 0.5; Dice 1/3 of at most 2/3
        (0, 20, 10, 0.0, 0.0),  # empty intersection
        (1, 10, 20, (1 / 29) / (10 / 20), 1 / 10),  # k > Y_a: symmetric in a and b
        (3, 10, 10, 3 / 17, 3 / 10),  # k == Y_a: max is 1, no rescaling
        (10, 10, 10, 1.0, 1.0),
        (2, 0, 10, 0.0, 0.0),  # no audio labels at all (missing/silent audio, untagged)
        (0, 5, 0, 0.0, 0.0),
    ],
)
def test_overlap_hand_computed(i, a, b, iou, dice):
    assert overlap_target(i, a, b, "iou") == pytest.approx(iou)
    assert overlap_target(i, a, b, "dice") == pytest.approx(dice)


@pytest.mark.parametrize(
    ("i", "a", "b", "iou", "dice"),
    [(10, 20, 10, 10 / 20, 20 / 30), (5, 20, 10, 5 / 25, 10 / 30), (3, 10, 10, 3 / 17, 6 / 20), (2, 0, 10, 0.0, 0.0)],
)
def test_unnormalised_overlap_is_the_plain_iou_and_dice(i, a, b, iou, dice):
    assert overlap_target(i, a, b, "iou", normalize="none") == pytest.approx(iou)
    assert overlap_target(i, a, b, "dice", normalize="none") == pytest.approx(dice)


@pytest.mark.parametrize(("normalize", "fewest_shared"), [("max", 4), ("none", 6)])
def test_what_alpha_means_under_each_normalisation(normalize, fewest_shared):
    # k = 10 SAVLD labels, Y_a = 20 AST labels: the fewest shared labels that reach alpha = 0.25.
    values = overlap_target(np.arange(11), 20, 10, "iou", normalize)
    assert int(np.argmax(values >= 0.25)) == fewest_shared


def test_overlap_broadcasts_and_rejects_unknown():
    values = overlap_target(np.array([[0, 5, 10]]), 20, np.array([[10], [20]]), "iou")
    np.testing.assert_allclose(values, [[0, 0.4, 1.0], [0, 5 / 35, 10 / 30]], rtol=1e-6)
    assert values.dtype == np.float32
    with pytest.raises(AvlabelError, match="choose one of iou, dice"):
        overlap_target(1, 2, 3, "jaccard")
    with pytest.raises(AvlabelError, match="unknown target normalisation 'sum'; choose one of max, none"):
        overlap_target(1, 2, 3, "iou", "sum")


def test_multi_hot_ignores_padding():
    hot = multi_hot(np.array([[0, 2, -1], [-1, -1, -1]]), 4)
    assert hot.tolist() == [[True, False, True, False], [False] * 4]


def test_top_labels_are_the_most_probable_and_empty_without_audio():
    probs = np.array([[0.1, 0.9, 0.3, 0.8], [0.9, 0.1, 0.2, 0.3], [0.5, 0.5, 0.5, 0.5]], np.float16)
    sets = top_labels(probs, 2, np.array([True, True, False]))
    assert [sorted(row) for row in sets[:2].tolist()] == [[1, 3], [0, 3]]
    assert sets[2].tolist() == [-1, -1]
    with pytest.raises(AvlabelError, match="--ya must be between 1 and 4"):
        top_labels(probs, 5, np.ones(3, bool))


@pytest.fixture()
def targets():
    # 3 audio rows over 6 labels, 2 classes with k = 2; row 2 has no audio.
    audio_sets = np.array([[0, 1, 2], [3, 4, 5], [-1, -1, -1]])
    class_sets = np.array([[0, 1], [2, 3]])
    return RelevanceTargets(audio_sets, class_sets, row_class=np.array([0, 1, -1]), num_labels=6, overlap="iou")


def test_matrix_pairs_and_own_class_agree(targets):
    # Row 0 {0,1,2}: class 0 {0,1} -> i=2, IoU 2/3 of max 2/3 = 1; class 1 {2,3} -> i=1, IoU 1/4 of 2/3.
    # Row 1 {3,4,5}: class 0 -> 0; class 1 -> i=1 -> 3/8. Row 2: no audio -> 0.
    expected = np.array([[1.0, 0.375], [0.0, 0.375], [0.0, 0.0]], np.float32)
    np.testing.assert_allclose(targets.matrix([0, 1, 2], [0, 1]), expected)
    np.testing.assert_allclose(targets.pairs([0, 1, 2, 0], [1, 1, 0, 0]), [0.375, 0.375, 0.0, 1.0])
    np.testing.assert_allclose(targets.for_items([1, 0]), [0.375, 1.0])
    with pytest.raises(ValueError, match="outside the manifest"):
        targets.for_items([2])


def test_dice_variant():
    dice = RelevanceTargets(np.array([[0, 1, 2]]), np.array([[2, 3]]), np.array([0]), num_labels=6, overlap="dice")
    np.testing.assert_allclose(dice.matrix([0], [0]), [[0.5]])  # i=1, min(3, 2)=2


def test_save_and_load(tmp_path, targets):
    targets.meta["k"] = 2
    targets.save(tmp_path)
    loaded = RelevanceTargets.load(tmp_path)
    assert loaded.overlap == "iou" and loaded.meta["k"] == 2 and loaded.num_labels == 6
    np.testing.assert_array_equal(loaded.matrix([0, 1, 2], [0, 1]), targets.matrix([0, 1, 2], [0, 1]))
    with pytest.raises(AvlabelError, match="no relevance targets"):
        RelevanceTargets.load(tmp_path / "elsewhere")


def test_normalisation_is_saved_and_older_targets_load_as_max(tmp_path, targets):
    raw = RelevanceTargets(targets.audio_sets, targets.class_sets, targets.row_class, 6, "iou", normalize="none")
    raw.save(tmp_path)
    loaded = RelevanceTargets.load(tmp_path)
    assert loaded.normalize == "none"
    np.testing.assert_allclose(loaded.matrix([0], [0]), [[2 / 3]])  # i = 2 of |A| = 3, |B| = 2: plain IoU
    meta = json.loads((tmp_path / "targets.json").read_text())
    del meta["normalize"]  # a cache written before the choice existed
    (tmp_path / "targets.json").write_text(json.dumps(meta))
    assert RelevanceTargets.load(tmp_path).normalize == "max"


def test_read_tags(tmp_path, audioset):
    path = tmp_path / "tags.csv"
    path.write_text(
        "video_id,audio_labels,relevant\n"
        'a,"Drum;Chirp, tweet",1\n'  # AudioSet names contain commas: ';' separates labels
        "b,,0\n"  # no sound event
        "c,speech,\n",  # case-insensitive, relevance unknown
        encoding="utf-8",
    )
    tags = read_tags(path, audioset)
    assert tags.labels["a"] == tuple(sorted([audioset.index("Drum"), audioset.index("Chirp, tweet")]))
    assert tags.labels["b"] == () and tags.labels["c"] == (audioset.index("Speech"),)
    assert tags.relevant == {"a": 1, "b": 0}
    sets = tag_sets(["a", "a", "b", "c", "zzz"], tags, np.array([True, False, True, True, True]))
    assert sorted(sets[0][sets[0] >= 0]) == list(tags.labels["a"])
    assert (sets[1] < 0).all() and (sets[2] < 0).all() and (sets[4] < 0).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("video,labels\nx,Drum\n", "must have the columns video_id,audio_labels"),
        ("video_id,audio_labels\nx,Drumz\n", r"line 2: .*Drumz"),
        ("video_id,audio_labels,relevant\nx,Drum,yes\n", "relevant must be 0 or 1"),
    ],
)
def test_read_tags_errors(tmp_path, audioset, text, message):
    path = tmp_path / "tags.csv"
    path.write_text(text)
    with pytest.raises(AvlabelError, match=message):
        read_tags(path, audioset)
