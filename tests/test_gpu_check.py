"""``benchmarks/gpu_check.py``: its CPU mode runs every check, prints one table and writes the figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
SCRIPT = REPOSITORY / "benchmarks" / "gpu_check.py"


def _gpu_check(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--workers", "2", "--out", str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


def _table(stdout: str) -> dict[str, dict]:
    """The printed table's rows by check name."""
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    assert lines[0] == "| check | setting | result | s | status |"
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[1:]]
    return {row[0]: dict(zip(("setting", "result", "seconds", "status"), row[1:], strict=True)) for row in rows}


EAGER = ["avlabel bench imd_tiny, eager", "avlabel bench timesformer_tiny, eager"]
COMPILED = ["avlabel bench imd_tiny, torch.compile", "avlabel bench timesformer_tiny, torch.compile"]
REST = [
    "tiny AST forward, random weights",
    "tvl1-torch flow, preset ultrafast",
    "avlabel synth",
    "audio cache end to end (avlabel targets)",
    "avlabel train",
    "avlabel train --resume",
]


def test_cpu_mode_runs_every_check_and_prints_one_table(tmp_path):
    out = tmp_path / "check"
    done = _gpu_check(out, "--skip", "compile")  # compiling costs over a minute on the CPU: the slow test below
    assert done.returncode == 0, done.stderr[-3000:]
    table = _table(done.stdout)
    assert list(table) == EAGER + COMPILED + REST
    assert {name: row["status"] for name, row in table.items()} == {
        **dict.fromkeys(EAGER + REST, "ok"),
        **dict.fromkeys(COMPILED, "skipped"),
    }
    assert "train " in table[EAGER[0]]["result"] and "MFU" in table[EAGER[0]]["result"]
    assert table["avlabel train --resume"]["result"].startswith("resumed at step 6, reached 8")
    assert done.stdout.splitlines()[0].startswith("avlabel GPU check on CPU")

    assert (out / "gpu_check.md").read_text() in done.stdout
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["ok"] and report["preset"] == "tiny" and report["environment"]["device"] == "cpu"
    figures = {row["check"]: row["figures"] for row in report["rows"]}
    assert figures[EAGER[0]]["train_clips_per_s"] > 0 and figures[EAGER[1]]["mfu"] > 0
    assert figures[REST[0]]["ast_forward_clips_per_s"] > 0 and figures[REST[0]]["ast_batch"] == 64
    assert figures[REST[1]]["pairs_per_s"] > 0
    assert (
        figures[REST[3]]["videos"] == figures[REST[3]]["computed"] == 20 and figures[REST[3]]["videos_per_second"] > 0
    )
    assert figures[REST[4]]["steps"] == 6 and figures[REST[5]]["steps"] == 8
    assert (out / "run" / "checkpoints" / "last.safetensors").is_file()
    assert (out / "logs" / "targets.log").read_text().startswith("$ ")

    again = _gpu_check(out, "--skip", "compile")  # an earlier check's folder is not reused
    assert again.returncode == 2 and "holds an earlier check" in again.stderr


def test_bad_options_are_refused(tmp_path):
    done = _gpu_check(tmp_path / "a", "--skip", "bench,gpus")
    assert done.returncode == 2 and "unknown --skip part(s) gpus" in done.stderr
    import torch

    if not torch.cuda.is_available():
        done = _gpu_check(tmp_path / "b", "--device", "cuda")  # the later --device wins
        assert done.returncode == 2 and "no CUDA GPU is visible" in done.stderr


@pytest.mark.slow
def test_cpu_mode_with_compile(tmp_path):
    done = _gpu_check(tmp_path / "check")
    assert done.returncode == 0, done.stderr[-3000:]
    assert {row["status"] for row in _table(done.stdout).values()} == {"ok"}
