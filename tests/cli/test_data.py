"""``avlabel data manifest``: writes a manifest, lists missing videos, fails in one line."""

from __future__ import annotations

from click.testing import CliRunner

from avlabel.cli import cli
from avlabel.data.manifest import read_manifest


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"video")


def test_kinetics_manifest_with_missing_videos(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nplaying drums,abc,0,10,train\nwhistling,gone,0,10,train\n"
    )
    _touch(tmp_path / "train" / "playing drums" / "abc_000000_000010.mp4")
    output = tmp_path / "out" / "k400.csv"
    result = CliRunner().invoke(
        cli,
        [
            "data",
            "manifest",
            "--format",
            "kinetics",
            "--root",
            str(tmp_path),
            "-o",
            str(output),
            "--label-set",
            "kinetics400",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 clips, 1 classes, splits: train 1" in result.output
    assert "1 listed videos are missing" in result.output
    assert (tmp_path / "out" / "k400.csv.missing.txt").read_text().splitlines()[
        1
    ] == "train\twhistling\tgone_000000_000010"
    assert result.output.rstrip().endswith(str(output))
    assert [r.video_id for r in read_manifest(output)] == ["abc_000000_000010"]


def test_folders_manifest_and_label_set_check(tmp_path):
    _touch(tmp_path / "data" / "whistling" / "a.mp4")
    _touch(tmp_path / "data" / "whistlin" / "b.mp4")
    args = ["data", "manifest", "--format", "folders", "--root", str(tmp_path / "data"), "-o", str(tmp_path / "m.csv")]
    result = CliRunner().invoke(cli, [*args, "--label-set", "kinetics400"])
    assert result.exit_code == 2
    assert "unknown label 'whistlin'" in result.output and "did you mean 'whistling'" in result.output
    assert not (tmp_path / "m.csv").exists()
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert len(read_manifest(tmp_path / "m.csv")) == 2


def test_errors_are_one_line_with_exit_2(tmp_path):
    result = CliRunner().invoke(
        cli, ["data", "manifest", "--format", "ucf101", "--root", str(tmp_path), "-o", str(tmp_path / "m.csv")]
    )
    assert result.exit_code == 2
    assert result.output.startswith("Error: UCF-101's classInd.txt") and result.output.count("\n") == 1
