"""``avlabel synth``: writes the benchmark, validates its options in one line."""

from __future__ import annotations

import csv

from click.testing import CliRunner

from avlabel.cli import cli


def test_synth_writes_a_small_benchmark(tmp_path):
    args = ["synth", "--out", str(tmp_path / "bench"), "--classes", "2", "--per-class", "5", "--duration", "1",
            "--size", "32", "--workers", "1", "--relevant-fraction", "0.4"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "10 clips (2 classes x 5)" in result.output
    assert result.output.rstrip().endswith("manifest.csv")
    with open(tmp_path / "bench" / "audio_tags.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10 and sum(row["relevant"] == "1" for row in rows) == 4  # 2 of 5 per class
    assert len(list((tmp_path / "bench" / "videos").rglob("*.mp4"))) == 10


def test_bad_options_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path), "--classes", "40"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: --classes must be between 2 and 12")
