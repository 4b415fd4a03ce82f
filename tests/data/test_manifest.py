"""Manifest CSVs: round trip, relative paths, and validation that reports every problem at once."""

from __future__ import annotations

import shutil

import pytest

from avlabel.data.manifest import ClipRecord, Manifest, read_manifest, write_manifest
from avlabel.errors import AvlabelError
from avlabel.labels import load_label_set


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "dataset"
    (root / "videos").mkdir(parents=True)
    records = []
    for index, (label, split) in enumerate([("playing drums", "train"), ("whistling", "train"), ("whistling", "test")]):
        path = root / "videos" / f"v{index}.mp4"
        path.write_bytes(b"x")
        records.append(
            ClipRecord(f"v{index}", path, label, split, 1.5 if index == 2 else None, 4.0 if index == 2 else None)
        )
    write_manifest(records, root / "manifest.csv")
    return root, records


def test_round_trip_keeps_records_and_stores_relative_paths(dataset):
    root, records = dataset
    text = (root / "manifest.csv").read_text()
    assert text.splitlines()[0] == "video_id,path,label,split,start,end"
    assert "videos/v2.mp4,whistling,test,1.5,4.0" in text
    manifest = read_manifest(root / "manifest.csv")
    assert manifest.records == records
    assert manifest.labels() == ["playing drums", "whistling"]
    assert manifest.splits() == ["train", "test"]
    assert [r.video_id for r in manifest.split("train")] == ["v0", "v1"]
    assert manifest[2].path.is_absolute()


def test_moving_the_dataset_keeps_it_readable_and_its_hash(dataset, tmp_path):
    root, _ = dataset
    before = read_manifest(root / "manifest.csv")
    moved = shutil.move(str(root), str(tmp_path / "elsewhere"))
    after = read_manifest(f"{moved}/manifest.csv")
    assert after.sha256 == before.sha256
    assert after[0].path.parent.parent.name == "elsewhere"


def test_hash_changes_with_any_row():
    one = Manifest([ClipRecord("a", "x/a.mp4", "whistling", "train")])
    other = Manifest([ClipRecord("a", "x/a.mp4", "whistling", "test")])
    assert one.sha256 != other.sha256


def test_labels_are_checked_and_canonicalised(dataset):
    root, _ = dataset
    text = (root / "manifest.csv").read_text().replace("whistling,train", "Whistling ,train")
    (root / "manifest.csv").write_text(text)
    manifest = read_manifest(root / "manifest.csv", load_label_set("kinetics400"))
    assert manifest[1].label == "whistling"


def test_every_problem_is_reported_in_one_error(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "m.csv").write_text(
        "video_id,path,label,split,start,end\n"
        "a,a.mp4,playing drums,train,,\n"
        "a,a.mp4,playing drumz,train,,\n"
        "b,b.mp4,whistling,train,,\n"
        "c,a.mp4,whistling,,,\n"
        "d,a.mp4,whistling,train,5,2\n"
    )
    with pytest.raises(AvlabelError) as error:
        read_manifest(tmp_path / "m.csv", load_label_set("kinetics400"))
    message = str(error.value)
    for expected in (
        "duplicate video_id: a",
        "playing drumz",
        "did you mean",
        "missing file (1 of",
        "b.mp4",
        "empty field: line 5 (split)",
        "start/end out of order: line 6",
    ):
        assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "manifest not found"), ("id,file\nx,y\n", "lacks column"), ("video_id,path,label,split\n", "no rows")],
)
def test_unreadable_manifests(tmp_path, content, message):
    path = tmp_path / "m.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(AvlabelError, match=message):
        read_manifest(path)


def test_unknown_split_names_the_available_ones(dataset):
    root, _ = dataset
    with pytest.raises(AvlabelError, match="splits are: train, test"):
        read_manifest(root / "manifest.csv").split("val")


def test_check_files_false_allows_missing_videos(tmp_path):
    (tmp_path / "m.csv").write_text("video_id,path,label,split\nx,gone.mp4,whistling,train\n")
    assert len(read_manifest(tmp_path / "m.csv", check_files=False)) == 1
