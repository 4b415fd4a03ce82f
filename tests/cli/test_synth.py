"""``avlabel synth``: writes the benchmark, validates its options in one line."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from avlabel.cli import cli


def test_synth_writes_a_small_benchmark(tmp_path):
    args = [
        "synth",
        "--out",
        str(tmp_path / "bench"),
        "--classes",
        "2",
        "--per-class",
        "5",
        "--duration",
        "1",
        "--size",
        "32",
        "--workers",
        "1",
        "--audio-mix",
        "0.4,0.6,0",
        "--class-audio-mix",
        "playing trumpet=1,0,0",
        "--visual-cue",
        "shape-motion",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "10 clips (2 classes x 5)" in result.output
    assert result.output.rstrip().endswith("manifest.csv")
    with open(tmp_path / "bench" / "audio_tags.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # playing drums: 3/1/1 clips per split, 40% own sound -> 1 + 0 + 0 (largest remainder); playing trumpet: all 5.
    assert len(rows) == 10 and sum(row["relevant"] == "1" for row in rows) == 1 + 5
    assert len(list((tmp_path / "bench" / "videos").rglob("*.mp4"))) == 10


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--classes", "40"], "--classes must be between 2 and 12"),
        (["--audio-mix", "0.5,0.5"], "--audio-mix '0.5,0.5': expected three shares OWN,OTHER,BACKGROUND"),
        (
            ["--audio-mix", "0.5,0.4,0.4"],
            "--audio-mix takes three non-negative shares OWN,OTHER,BACKGROUND that sum to 1",
        ),
        (["--class-audio-mix", "0.5,0.5,0"], "--class-audio-mix '0.5,0.5,0': expected CLASS=OWN,OTHER,BACKGROUND"),
        (["--hue-sigma", "-1"], "--hue-sigma and --drift-sigma must be >= 0 radians"),
        (["--workers", "-1"], "Invalid value for '--workers': -1 is not in the range x>=0"),
        (["--out", "{file}"], "Invalid value for '--out': Directory '{file}' is a file"),
        (["--out", "{file}/bench"], "--out {file}/bench: {file} is a file, so no folder can be made under it"),
    ],
)
def test_bad_options_exit_2(tmp_path, options, message):
    (tmp_path / "notes.txt").write_text("not a folder")
    file = str(tmp_path / "notes.txt")
    options = [option.format(file=file) for option in options]
    result = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "bench"), *options])
    assert result.exit_code == 2
    assert message.format(file=file) in result.output.splitlines()[-1]
    assert "Traceback" not in result.output
    assert not (tmp_path / "bench").exists()
