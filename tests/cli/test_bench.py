"""`avlabel bench` on the CPU with tiny models: JSON written, table printed, both models compared."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from avlabel.cli import cli


def test_bench_compares_two_models_and_writes_json(tmp_path):
    output = tmp_path / "bench.json"
    args = [
        "bench",
        "-m",
        "imd_tiny",
        "-m",
        "timesformer_tiny",
        "--device",
        "cpu",
        "--batch",
        "2",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--frames",
        "2",
        "-o",
        str(output),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    assert [r["model"] for r in report["results"]] == ["imd_tiny", "timesformer_tiny"]
    assert report["environment"]["device"] == "cpu" and report["peak_matmul_precision"] == "fp32"
    assert report["peak_matmul_tflops"] > 0
    for r in report["results"]:
        assert r["frames"] == 2 and r["batch"] == 2 and r["mfu"] > 0
    ratio = report["ratios"]["imd_tiny / timesformer_tiny"]
    first, second = report["results"]
    assert ratio["train_clips_per_s"] == first["train_clips_per_s"] / second["train_clips_per_s"]
    assert "imd_tiny" in result.stdout and "MFU" in result.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_bench_on_a_missing_gpu_is_a_one_line_error():
    result = CliRunner().invoke(cli, ["bench", "-m", "imd_tiny", "--device", "cuda"])
    assert result.exit_code == 2 and result.output.startswith("Error: ") and "no CUDA GPU" in result.output
