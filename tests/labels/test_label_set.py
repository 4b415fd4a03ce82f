"""LabelSet look-ups and user label files in every accepted format, including bad ones."""

from __future__ import annotations

import json

import pytest

from avlabel.errors import AvlabelError
from avlabel.labels import LabelSet, load_label_set


def test_index_exact_then_case_and_whitespace_insensitive():
    labels = LabelSet("toy", ("playing drums", "Applause", "dog"))
    assert labels.index("Applause") == 1
    assert labels.index("  PLAYING   drums ") == 0
    assert "applause" in labels and "cat" not in labels and 3 not in labels
    assert list(labels) == ["playing drums", "Applause", "dog"] and len(labels) == 3


def test_unknown_label_suggests_close_matches():
    kinetics = load_label_set("kinetics400")
    with pytest.raises(AvlabelError, match="did you mean 'playing drums'"):
        kinetics.index("playing drum")
    with pytest.raises(AvlabelError, match="did you mean 'playing drums'"):
        kinetics.index("drums")


def test_label_differing_only_in_case_is_ambiguous():
    labels = LabelSet("toy", ("Dog", "DOG"))
    assert labels.index("Dog") == 0
    with pytest.raises(AvlabelError, match="ambiguous"):
        labels.index("dog")


def test_sha256_depends_on_order_and_content_not_name():
    a = LabelSet("a", ("x", "y"))
    assert a.sha256 == LabelSet("b", ["x", "y"]).sha256
    assert a.sha256 != LabelSet("a", ("y", "x")).sha256


@pytest.mark.parametrize(
    ("labels", "ids", "message"),
    [
        ((), None, "empty"),
        (("a", "a"), None, "duplicate label 'a'"),
        (("a", " "), None, "empty label at index 1"),
        (("a", "b"), ("/m/1",), "1 ids for 2 labels"),
    ],
)
def test_invalid_label_sets_are_rejected(labels, ids, message):
    with pytest.raises(AvlabelError, match=message):
        LabelSet("bad", labels, ids)


def test_shipped_names_are_forgiving_about_case_and_dashes():
    assert load_label_set("Kinetics-400") is load_label_set("kinetics400")
    assert load_label_set("UCF_101").name == "ucf101"


def test_unknown_set_name_lists_the_shipped_ones():
    with pytest.raises(AvlabelError, match="unknown label set 'kinetic400'; choose one of audioset"):
        load_label_set("kinetic400")


def test_txt_file_one_label_per_line(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("\ufeffplaying drums\n\nsinging\n", encoding="utf-8")
    labels = load_label_set(path)
    assert labels.name == "mine" and labels.labels == ("playing drums", "singing") and labels.ids is None
    assert load_label_set(str(path)).labels == labels.labels


def test_txt_file_in_classind_format_drops_the_numbers(tmp_path):
    path = tmp_path / "classInd.txt"
    path.write_text("1 ApplyEyeMakeup\n2 ApplyLipstick\n3 Archery\n", encoding="utf-8")
    assert load_label_set(path).labels == ("ApplyEyeMakeup", "ApplyLipstick", "Archery")


def test_txt_labels_that_merely_start_with_numbers_are_kept(tmp_path):
    path = tmp_path / "numbers.txt"
    path.write_text("3 legged race\n7 up\n", encoding="utf-8")
    assert load_label_set(path).labels == ("3 legged race", "7 up")


def test_csv_file_with_display_name_mid_and_index_columns(tmp_path):
    path = tmp_path / "sounds.csv"
    path.write_text('index,mid,display_name\n1,/m/b,"Chirp, tweet"\n0,/m/a,Speech\n', encoding="utf-8")
    labels = load_label_set(path)
    assert labels.labels == ("Speech", "Chirp, tweet")
    assert labels.ids == ("/m/a", "/m/b")


def test_csv_file_with_label_column(tmp_path):
    path = tmp_path / "actions.csv"
    path.write_text("label,extra\nrunning,1\njumping,2\n", encoding="utf-8")
    assert load_label_set(path).labels == ("running", "jumping")


def test_json_list(tmp_path):
    path = tmp_path / "actions.json"
    path.write_text(json.dumps(["running", "jumping"]), encoding="utf-8")
    assert load_label_set(path).labels == ("running", "jumping")


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("missing.txt", None, "does not exist"),
        ("empty.txt", "\n\n", "is empty"),
        ("dupes.txt", "a\nb\na\n", "duplicate label 'a'"),
        ("nocol.csv", "name\nx\n", "no 'display_name' or 'label' column"),
        ("norows.csv", "label\n", "no rows"),
        ("badindex.csv", "index,label\n0,a\n0,b\n", "'index' column must hold each of 0..1 once"),
        ("broken.json", "[1, 2", "not valid JSON"),
        ("wrongtype.json", '{"a": 1}', "JSON list of label strings"),
        ("labels.yaml", "- a\n", "unsupported type '.yaml'"),
    ],
)
def test_bad_label_files_raise_one_actionable_error(tmp_path, filename, content, message):
    path = tmp_path / filename
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(AvlabelError, match=message):
        load_label_set(path)


def test_binary_file_is_reported_as_unreadable(tmp_path):
    path = tmp_path / "blob.txt"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(AvlabelError, match="cannot read label file"):
        load_label_set(path)
