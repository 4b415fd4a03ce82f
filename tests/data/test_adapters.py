"""Dataset adapters on tiny fake trees laid out like the real datasets."""

from __future__ import annotations

import pytest

from avlabel.data.adapters import build_records
from avlabel.errors import AvlabelError


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"video")
    return path


def test_kinetics_class_folders_flat_files_and_missing_videos(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        "playing drums,abc,10,20,train,0\n"
        "whistling,def,0,10,train,0\n"
        "whistling,gone,5,15,train,0\n"
        "whistling,def,0,10,train,0\n"
    )
    (tmp_path / "annotations" / "validate.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nplaying drums,ghi,30,40,validate\n"
    )
    (tmp_path / "annotations" / "test.csv").write_text("youtube_id,time_start,time_end,split\nzzz,0,10,test\n")
    _touch(tmp_path / "train" / "playing drums" / "abc_000010_000020.mp4")
    _touch(tmp_path / "train" / "whistling" / "def_000000_000010.mkv")
    _touch(tmp_path / "val" / "ghi.webm")  # some downloaders keep only the youtube id

    result = build_records("kinetics", tmp_path)
    by_id = {record.video_id: record for record in result.records}
    assert set(by_id) == {"abc_000010_000020", "def_000000_000010", "ghi_000030_000040"}
    assert by_id["ghi_000030_000040"].split == "val"
    assert by_id["def_000000_000010"].path.suffix == ".mkv"
    assert by_id["abc_000010_000020"].label == "playing drums"
    assert result.missing == ["train\twhistling\tgone_000005_000015"]
    assert result.skipped == {"duplicate row": 1, "no label (unlabelled test rows)": 1}


def test_kinetics_without_annotations_says_what_to_pass(tmp_path):
    with pytest.raises(AvlabelError, match="--annotations"):
        build_records("kinetics", tmp_path)


def test_ucf101_official_lists(tmp_path):
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n")
    (lists / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nHandstandPushups/v_HandStandPushups_g08_c01.avi 2\n"
    )
    (lists / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi\n"
    )
    _touch(tmp_path / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi")
    _touch(tmp_path / "UCF-101" / "HandstandPushups" / "v_HandStandPushups_g08_c01.avi")
    _touch(tmp_path / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi")

    result = build_records("ucf101", tmp_path, split_index=1)
    assert [(r.video_id, r.label, r.split) for r in result.records] == [
        ("v_ApplyEyeMakeup_g08_c01", "ApplyEyeMakeup", "train"),
        ("v_HandStandPushups_g08_c01", "HandstandPushups", "train"),
        ("v_ApplyEyeMakeup_g01_c01", "ApplyEyeMakeup", "test"),
    ]
    assert result.missing == ["test\tApplyEyeMakeup\tv_ApplyEyeMakeup_g02_c01.avi"]
    with pytest.raises(AvlabelError, match="testlist02.txt"):
        (lists / "trainlist02.txt").write_text("")
        build_records("ucf101", tmp_path, split_index=2)
    with pytest.raises(AvlabelError, match="1, 2 or 3"):
        build_records("ucf101", tmp_path, split_index=4)


def test_hmdb51_split_files(tmp_path):
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_text(
        "a_brush_hair_1.avi 1 \nb_brush_hair_2.avi 2 \nc_brush_hair_3.avi 0 \n"
    )
    (splits / "brush_hair_test_split2.txt").write_text("a_brush_hair_1.avi 2 \n")
    for name in ("a_brush_hair_1.avi", "b_brush_hair_2.avi", "c_brush_hair_3.avi"):
        _touch(tmp_path / "hmdb51" / "brush_hair" / name)
    result = build_records("hmdb51", tmp_path, split_index=1)
    assert [(r.video_id, r.label, r.split) for r in result.records] == [
        ("a_brush_hair_1", "brush_hair", "train"),
        ("b_brush_hair_2", "brush_hair", "test"),
    ]
    assert result.skipped == {"not used in split 1": 1}
    assert [r.split for r in build_records("hmdb51", tmp_path, split_index=2).records] == ["test"]


def test_folders_with_and_without_split_folders(tmp_path):
    flat = tmp_path / "flat"
    _touch(flat / "whistling" / "one.mp4")
    _touch(flat / "whistling" / "sub" / "two.mkv")
    _touch(flat / "applauding" / "one.mp4")
    _touch(flat / "applauding" / "notes.txt")
    result = build_records("folders", flat)
    assert sorted((r.video_id, r.label, r.split) for r in result.records) == [
        ("applauding/one", "applauding", "train"),
        ("whistling/one", "whistling", "train"),
        ("whistling/sub/two", "whistling", "train"),
    ]
    assert result.skipped == {"not a video file": 1}

    split = tmp_path / "split"
    _touch(split / "train" / "whistling" / "a.mp4")
    _touch(split / "validation" / "whistling" / "b.mp4")
    assert sorted((r.video_id, r.split) for r in build_records("folders", split).records) == [
        ("whistling/a", "train"),
        ("whistling/b", "val"),
    ]


def test_unknown_format_and_missing_root(tmp_path):
    with pytest.raises(AvlabelError, match="choose one of kinetics, ucf101, hmdb51, folders"):
        build_records("sports1m", tmp_path)
    with pytest.raises(AvlabelError, match="not a folder"):
        build_records("folders", tmp_path / "nope")
