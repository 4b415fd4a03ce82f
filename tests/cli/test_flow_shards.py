"""``avlabel flow`` split over shards: the same folder as one run, byte for byte, whatever happens in between."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from avlabel._sharding import shard_of
from avlabel.cli import cli
from avlabel.data.flow_format import FlowStore
from avlabel.data.manifest import read_manifest
from avlabel.errors import AvlabelError
from tests.cli.test_flow import _manifest

OPTIONS = ["--preset", "ultrafast", "--short-side", "32"]


def _flow(manifest: Path, out: Path, *args: str, env: dict | None = None):
    result = CliRunner().invoke(cli, ["flow", "--manifest", str(manifest), "--out", str(out), *OPTIONS, *args], env=env)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # rich wraps lines at the terminal width


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file of a flow folder with its bytes, but the run's own lock and staging files."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.relative_to(folder).parts[0].startswith(".flow")
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Eight short clips and a missing file, with one unsharded run's folder to compare against."""
    root = tmp_path_factory.mktemp("flow_shards")
    manifest = _manifest(root, 8, num_frames=5, height=48, width=64)
    with open(manifest, "a") as handle:
        handle.write("ghost,ghost.mp4,whistling,train,,\n")
    whole = root / "whole"
    _flow(manifest, whole, "--workers", "2")  # two workers: finishing order varies, the folder must not
    return manifest, whole


def test_three_shards_leave_exactly_the_folder_of_one_run(dataset, tmp_path):
    manifest, whole = dataset
    out = tmp_path / "split"
    ids = [record.video_id for record in read_manifest(manifest, check_files=False)]
    assert sorted({shard_of(video_id, 3) for video_id in ids}) == [0, 1, 2]  # every shard has work
    # The three launchers: torchrun's variables, a Slurm array whose ids start at 1, the flag.
    first = _flow(manifest, out, "--workers", "1", env={"RANK": "2", "WORLD_SIZE": "3", "LOCAL_RANK": "0"})
    assert "shard 2/3 (torchrun RANK 2 of WORLD_SIZE 3):" in first
    assert "2 of 3 shards still to finish (0/3, 1/3); the last to finish merges them" in first
    slurm = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"}
    second = _flow(manifest, out, "--workers", "2", env=slurm)
    assert "shard 0/3 (Slurm array task 1 of 3 (ids from 1)):" in second and "(1/3)" in second
    assert not (out / "flow_sources.tsv").exists()  # nothing shared is written before the merge
    third = _flow(manifest, out, "--shard", "1/3", "--workers", "0", env=slurm)  # the flag wins
    assert "shard 1/3 (--shard):" in third and "the 3 shards have finished; merged them" in third
    assert _tree(out) == _tree(whole)
    assert (out / "flow_errors.log").read_text().startswith("ghost\tmedia file not found")
    assert sorted(path.name for path in (out / ".flow_shards").iterdir()) == ["merged.json"]
    FlowStore(out).check_covers(read_manifest(manifest, check_files=False), manifest)


def test_between_shards_the_folder_reads_what_is_finished(dataset, tmp_path):
    manifest, _ = dataset
    out = tmp_path / "split"
    _flow(manifest, out, "--shard", "0/2")
    records = read_manifest(manifest, check_files=False)
    done = [record for record in records if shard_of(record.video_id, 2) == 0]
    FlowStore(out).check_covers(done, manifest)  # source records of the unmerged shard are read: no warning
    with pytest.raises(AvlabelError, match=r"lacks flow for \d+ of 9 videos"):
        FlowStore(out).check_covers(records, manifest)


def test_a_shard_of_another_manifest_is_refused_before_it_computes(dataset, tmp_path):
    manifest, _ = dataset
    out = tmp_path / "split"
    _flow(manifest, out, "--shard", "0/2")
    other = manifest.with_name(f"other-{tmp_path.name}.csv")  # beside it: the paths are relative
    other.write_text(manifest.read_text().replace("ghost,ghost.mp4", "ghost,ghost2.mp4"))
    result = CliRunner().invoke(cli, ["flow", "--manifest", str(other), "--out", str(out), *OPTIONS, "--shard", "1/2"])
    assert result.exit_code == 2
    assert "shard 0/2 of" in result.output and "ran with manifest_sha256" in result.output
    assert not (out / ".flow_shards" / "1-of-2").exists()


def test_rerunning_one_shard_after_the_merge_merges_it_alone(dataset, tmp_path):
    manifest, whole = dataset
    out = tmp_path / "split"
    for index in range(3):
        _flow(manifest, out, "--shard", f"{index}/3")
    redo = next(
        r.video_id
        for r in read_manifest(manifest, check_files=False)
        if r.path.is_file() and shard_of(r.video_id, 3) == 1
    )
    for frame in (out / redo).iterdir():
        frame.unlink()
    (out / redo).rmdir()
    again = _flow(manifest, out, "--shard", "1/3")
    assert "1 videos computed" in again and "the 3 shards have finished" in again
    assert _tree(out) == _tree(whole)


def test_a_killed_shard_resumes_and_the_split_still_equals_one_run(tmp_path):
    count, pairs = 8, 19
    manifest = _manifest(tmp_path, count, num_frames=pairs + 1, height=128, width=160)
    whole = tmp_path / "whole"
    _flow(manifest, whole, "--workers", "1")
    out = tmp_path / "split"
    mine = sorted(f"clip{i}" for i in range(count) if shard_of(f"clip{i}", 2) == 1)
    assert len(mine) >= 2
    command = [sys.executable, "-m", "avlabel", "flow", "--manifest", str(manifest), "--out", str(out), *OPTIONS]
    process = subprocess.Popen(
        [*command, "--shard", "1/2", "--workers", "1"],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any((out / video).is_dir() for video in mine):
        time.sleep(0.01)
    process.kill()  # SIGKILL: no cleanup handler runs
    process.wait()
    assert any((out / video).is_dir() for video in mine) and not all((out / video).is_dir() for video in mine), (
        "the shard should be interrupted part-way"
    )
    assert (out / ".flow_shards" / "1-of-2").is_dir() and not (
        out / ".flow_shards" / "1-of-2" / "shard_done.json"
    ).exists()

    # what kills during writes leave: a temporary of this shard's video and one of the other shard's
    others = sorted(f"clip{i}" for i in range(count) if shard_of(f"clip{i}", 2) == 0)
    (out / f".avlabel-tmp-999-{mine[-1]}").mkdir()
    (out / f".avlabel-tmp-998-{others[0]}").mkdir()

    resumed = _flow(manifest, out, "--shard", "1/2")
    assert "already done" in resumed and "1 of 2 shards still to finish (0/2)" in resumed
    assert not (out / f".avlabel-tmp-999-{mine[-1]}").exists()
    assert (out / f".avlabel-tmp-998-{others[0]}").exists()  # another shard's, maybe still being written
    last = _flow(manifest, out, "--shard", "0/2")
    assert "the 2 shards have finished" in last
    assert not list(out.glob(".avlabel-tmp-*"))
    assert _tree(out) == _tree(whole)
