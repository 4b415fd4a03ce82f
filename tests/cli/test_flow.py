"""``avlabel flow``: extraction, resumption after kill -9, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from avlabel.cli import cli
from avlabel.data.manifest import ClipRecord, write_manifest
from avlabel.data.writer import write_clip


def _panning(num_frames, height, width, seed):
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 255, (height // 8, (width + 4 * num_frames) // 8, 3), dtype=np.uint8)
    texture = np.kron(texture, np.ones((8, 8, 1), dtype=np.uint8))
    return np.stack([texture[:, 4 * i : 4 * i + width] for i in range(num_frames)])


def _manifest(root: Path, count: int, num_frames=8, height=64, width=96) -> Path:
    records = [
        ClipRecord(
            f"clip{i}",
            write_clip(root / f"clip{i}.mp4", _panning(num_frames, height, width, i), fps=25),
            "whistling",
            "train",
        )
        for i in range(count)
    ]
    return write_manifest(records, root / "manifest.csv")


def test_flow_command_computes_then_skips(tmp_path):
    manifest = _manifest(tmp_path, 2)
    out = tmp_path / "flow"
    first = CliRunner().invoke(cli, ["flow", "--manifest", str(manifest), "--out", str(out), "--workers", "1"])
    assert first.exit_code == 0, first.output
    assert "2 videos computed (14 frame pairs" in first.output and "0 already done" in first.output
    assert len(list((out / "clip1").glob("x_*.jpg"))) == 7
    second = CliRunner().invoke(cli, ["flow", "--manifest", str(manifest), "--out", str(out), "--workers", "2"])
    assert second.exit_code == 0 and "0 videos computed" in second.output and "2 already done" in second.output


def test_tvl1_torch_runs_on_the_global_device(tmp_path):
    import torch

    manifest = _manifest(tmp_path, 1, num_frames=3)
    args = ["flow", "--manifest", str(manifest), "--method", "tvl1-torch", "--preset", "ultrafast", "--workers", "0"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: a second thread would only spin on the shared CPU
    try:
        result = CliRunner().invoke(cli, ["--device", "cpu", *args, "--out", str(tmp_path / "flow")])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert "1 videos computed (2 frame pairs" in result.output
    if not torch.cuda.is_available():
        refused = CliRunner().invoke(cli, ["--device", "cuda", *args, "--out", str(tmp_path / "gpu_flow")])
        assert refused.exit_code == 2 and refused.output.startswith(
            "Error: --device cuda was asked for but no CUDA GPU"
        )
        assert not (tmp_path / "gpu_flow").exists()


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["flow", "--manifest", str(tmp_path / "none.csv"), "--out", str(tmp_path / "f")])
    assert result.exit_code == 2
    assert result.output.startswith("Error: manifest not found") and result.output.count("\n") == 1
    manifest = _manifest(tmp_path, 1)
    CliRunner().invoke(cli, ["flow", "--manifest", str(manifest), "--out", str(tmp_path / "f")])
    other = CliRunner().invoke(
        cli, ["flow", "--manifest", str(manifest), "--out", str(tmp_path / "f"), "--method", "farneback"]
    )
    assert other.exit_code == 2 and "method 'dis' (asked 'farneback')" in other.output


def test_missing_videos_are_skipped_and_listed(tmp_path):
    manifest = _manifest(tmp_path, 1)
    with open(manifest, "a") as handle:
        handle.write("ghost,ghost.mp4,whistling,train,,\n")
    result = CliRunner().invoke(cli, ["flow", "--manifest", str(manifest), "--out", str(tmp_path / "f")])
    assert result.exit_code == 0
    assert "1 failed" in result.output and "flow_errors.log" in result.output
    assert (tmp_path / "f" / "flow_errors.log").read_text().startswith("ghost\tmedia file not found")


def _start_flow(manifest: Path, out: Path, workers: int) -> subprocess.Popen:
    """`avlabel flow` in a process of its own, to be killed mid-run."""
    command = [sys.executable, "-m", "avlabel", "flow", "--manifest", str(manifest), "--out", str(out)]
    return subprocess.Popen(
        [*command, "--workers", str(workers)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_resumes_after_kill_9_without_half_written_videos(tmp_path):
    count, pairs = 8, 19
    manifest = _manifest(tmp_path, count, num_frames=pairs + 1, height=128, width=160)
    out = tmp_path / "flow"
    process = _start_flow(manifest, out, workers=1)
    deadline = time.monotonic() + 60
    finished = []
    while time.monotonic() < deadline and not finished:
        finished = [p for p in out.glob("clip*") if p.is_dir()] if out.is_dir() else []
        time.sleep(0.01)
    process.kill()  # SIGKILL: no cleanup handlers run
    process.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in out.glob("clip*")}
    assert 1 <= len(done_before) < count, "the run should be interrupted part-way"
    (out / ".avlabel-tmp-999-clip9").mkdir()  # what a kill during a write leaves behind

    result = CliRunner().invoke(cli, ["flow", "--manifest", str(manifest), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"{len(done_before)} already done" in result.output
    assert f"{count - len(done_before)} videos computed" in result.output
    expected = [f"clip{i}" for i in range(count)] + ["flow_errors.log", "flow_meta.json", "flow_sources.tsv"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(expected)
    for video in out.glob("clip*"):
        assert len(os.listdir(video)) == 2 * pairs  # every video complete
    assert {name: (out / name).stat().st_mtime_ns for name in done_before} == done_before  # not recomputed


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie runs nothing; only its reaper is missing


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
def test_kill_9_of_a_multi_worker_run_takes_its_workers_along_and_a_live_run_is_refused(tmp_path):
    count, pairs = 10, 49
    manifest = _manifest(tmp_path, count, num_frames=pairs + 1, height=128, width=160)
    out = tmp_path / "flow"
    process = _start_flow(manifest, out, workers=2)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_children(process.pid)) < 3:  # two workers and the resource tracker
        time.sleep(0.05)
    while time.monotonic() < deadline and not any(p.is_dir() for p in out.glob("clip*")):
        time.sleep(0.05)
    descendants = _children(process.pid)
    assert process.poll() is None and len(descendants) >= 3, (
        "the run should be going, with its workers and resource tracker"
    )

    # While it runs, a second run on the same folder is refused in one line.
    busy = CliRunner().invoke(cli, ["flow", "--manifest", str(manifest), "--out", str(out), "--workers", "1"])
    assert busy.exit_code == 2 and "another `avlabel flow` is writing" in busy.output, busy.output
    assert process.poll() is None, "the run should still be going when it is killed"

    process.kill()  # SIGKILL: no cleanup handler runs in the parent
    process.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in descendants):
        time.sleep(0.05)
    assert not [pid for pid in descendants if _alive(pid)], "workers or the resource tracker outlived the killed run"

    result = CliRunner().invoke(cli, ["flow", "--manifest", str(manifest), "--out", str(out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    for video in out.glob("clip*"):
        assert len(os.listdir(video)) == 2 * pairs
    assert len(list(out.glob("clip*"))) == count
