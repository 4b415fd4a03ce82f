"""``avlabel targets`` split over shards: per-shard caches merged into exactly the output of one run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from avlabel._sharding import shard_of
from avlabel.audio.cache import HEADER, TOKENS, AudioCache
from avlabel.cli import cli
from avlabel.data.manifest import ClipRecord, write_manifest
from avlabel.errors import AvlabelError
from tests.audio._media import make_savld, save_tiny_ast, write_media

_CLASSES = ("playing drums", "whistling")
_FILES = ("tone_wav", "stereo_mp4", "no_audio_mp4", "noise_wav", "garbage_mp4")  # the last is unreadable


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from avlabel.labels import load_label_set
    from avlabel.savld import save_savld

    root = tmp_path_factory.mktemp("targets_shards")
    audioset = load_label_set("audioset")
    media = write_media(root / "media")
    records = [ClipRecord(f"v{i:02d}", media[_FILES[i % 5]], _CLASSES[i % 2], "train") for i in range(12)]
    neighbours = [
        [audioset.index("Drum"), audioset.index("Speech")],
        [audioset.index("Whistling"), audioset.index("Whistle")],
    ]
    (root / "tags.csv").write_text(
        "video_id,audio_labels\n" + "".join(f"v{i:02d},{'Drum' if i % 3 else 'Whistling'}\n" for i in range(12))
    )
    return {
        "root": root,
        "manifest": write_manifest(records, root / "manifest.csv"),
        "savld": save_savld(make_savld(_CLASSES, audioset, neighbours), root / "savld.json"),
        "ast": save_tiny_ast(root / "ast", audioset.labels),
        "tags": root / "tags.csv",
    }


def _args(dataset, output: Path, *extra: str) -> list[str]:
    return [
        "--device",
        "cpu",
        "targets",
        "--manifest",
        str(dataset["manifest"]),
        "--savld",
        str(dataset["savld"]),
        "--windows",
        "2",
        "--workers",
        "0",
        "-o",
        str(output),
        *extra,
    ]


def _targets(dataset, output: Path, *extra: str, env: dict | None = None, status: int = 0) -> str:
    result = CliRunner().invoke(cli, _args(dataset, output, *extra), env=env)
    assert result.exit_code == status, result.output
    return " ".join(result.output.split())  # rich wraps lines at the terminal width


def _tree(folder: Path, runs: tuple[str, ...] = ("seconds", "videos_per_second")) -> dict[str, bytes]:
    """Every output file with its bytes (but the run's own lock and staging files); report.json without
    the ``runs`` figures of its extraction section, which describe the runs rather than the output
    (their timing differs between any two runs; what was cached before, between a run and a resumed one)."""
    tree = {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.relative_to(folder).parts[0].startswith(".audio")
    }
    report = json.loads(tree["report.json"])
    for figure in runs:
        assert report["extraction"].pop(figure) >= 0
    tree["report.json"] = json.dumps(report).encode()
    return tree


AST = ("--ast", "--ya", "5", "--tokens")


def test_three_shards_leave_exactly_the_cache_targets_and_report_of_one_run(dataset, tmp_path):
    ast = (AST[0], str(dataset["ast"]), *AST[1:])
    whole = tmp_path / "whole"
    _targets(dataset, whole, *ast, "--batch-size", "4")
    out = tmp_path / "split"
    assert sorted({shard_of(f"v{i:02d}", 3) for i in range(12)}) == [0, 1, 2]
    # Other batch sizes, the three launchers, another order.
    first = _targets(dataset, out, *ast, "--batch-size", "3", env={"RANK": "1", "WORLD_SIZE": "3", "LOCAL_RANK": "0"})
    assert "shard 1/3 (torchrun RANK 1 of WORLD_SIZE 3):" in first
    assert "2 of 3 shards still to finish (0/3, 2/3); the last to finish merges them" in first
    assert "targets:" not in first and not (out / HEADER).exists()  # nothing shared before the merge
    with pytest.raises(AvlabelError, match=r"no audio cache in .* yet: shards 0/3, 2/3 of the `avlabel targets` split"):
        AudioCache(out)
    slurm = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "2"}
    _targets(dataset, out, *ast, "--batch-size", "1", env=slurm)  # task 4 of ids 2..4: shard 2/3
    last = _targets(dataset, out, *ast, "--shard", "0/3", env=slurm)  # the flag wins
    assert "the 3 shards have finished; merged them" in last and "targets: 20 windows" in last
    assert "audio: 12 videos (0 cached, 10 computed, 2 unreadable" in last
    assert _tree(out) == _tree(whole)
    assert sorted(path.name for path in (out / ".audio_shards").iterdir()) == ["merged.json"]
    cache = AudioCache(out)
    assert cache.has_tokens and (out / TOKENS).stat().st_size > 0  # the token arrays were merged too


def test_merge_refuses_missing_shards_and_names_them(dataset, tmp_path):
    tags = ("--tags", str(dataset["tags"]), "--embedder", "logmel")
    out = tmp_path / "split"
    _targets(dataset, out, *tags, "--shard", "1/4")
    _targets(dataset, out, *tags, "--shard", "3/4")
    refused = _targets(dataset, out, *tags, "--merge", status=2)
    assert refused.startswith("Error: shards 0/4, 2/4 of") and "have not finished" in refused
    assert "run them (`avlabel targets --shard I/N`" in refused
    with_other_options = _targets(dataset, out, *tags, "--k", "1", "--merge", status=2)
    assert "shard 1/4 of" in with_other_options and "ran with k 2 (here 1)" in with_other_options
    # a shard with other options is refused before it computes anything
    _targets(dataset, out, *tags, "--shard", "0/4", "--normalize", "none", status=2)
    assert not (out / ".audio_shards" / "0-of-4").exists()
    _targets(dataset, out, *tags, "--shard", "0/4")
    done = _targets(dataset, out, *tags, "--shard", "2/4")
    assert "the 4 shards have finished" in done
    merged = (out / "targets.npz").read_bytes()
    # A merge step after the last shard merged: nothing staged, the targets are written again.
    again = _targets(dataset, out, *tags, "--merge")
    assert "targets: 20 windows" in again and (out / "targets.npz").read_bytes() == merged
    assert _targets(dataset, out, *tags, "--merge", "--shard", "1/4", status=2).startswith(
        "Error: --merge joins the shards of a split; leave out --shard 1/4"
    )


def test_an_explicit_merge_joins_a_split_whose_last_shard_could_not_merge(dataset, tmp_path):
    from avlabel._io import file_lock

    tags = ("--tags", str(dataset["tags"]), "--embedder", "logmel")
    whole = tmp_path / "whole"
    _targets(dataset, whole, *tags)
    out = tmp_path / "split"
    _targets(dataset, out, *tags, "--shard", "0/2")
    writer = file_lock(out / ".audio_cache.lock")  # another process writing the cache when the last shard finishes
    try:
        busy = _targets(dataset, out, *tags, "--shard", "1/2", status=2)
    finally:
        writer.close()
    assert busy.startswith("Error: another process is writing the audio cache in")
    assert not (out / HEADER).exists() and (out / ".audio_shards" / "1-of-2" / "shard_done.json").is_file()
    merged = _targets(dataset, out, *tags, "--merge")
    assert "audio: 12 videos (0 cached, 10 computed, 2 unreadable" in merged
    assert _tree(out) == _tree(whole)


_SLOW_SHARD = """
import sys, time
import avlabel.audio.embedders as embedders
from avlabel.cli import main

build = embedders.build_embedder
def slow_build(*args, **kwargs):  # an embedder slow enough for the test to kill the shard in the middle
    embedder = build(*args, **kwargs)
    embed = embedder.embed
    def slow_embed(*a, **k):
        time.sleep(0.3)
        return embed(*a, **k)
    embedder.embed = slow_embed
    return embedder
embedders.build_embedder = slow_build
import avlabel.audio.pipeline as pipeline
pipeline.build_embedder = slow_build
sys.argv = ["avlabel", *sys.argv[1:]]
main()
"""


def test_a_killed_shard_resumes_and_the_split_still_equals_one_run(dataset, tmp_path):
    tags = ("--tags", str(dataset["tags"]), "--embedder", "logmel")
    whole = tmp_path / "whole"
    _targets(dataset, whole, *tags)
    out = tmp_path / "split"
    script = tmp_path / "slow_shard.py"
    script.write_text(_SLOW_SHARD)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    args = _args(dataset, out, *tags, "--shard", "1/2", "--batch-size", "1")
    process = subprocess.Popen([sys.executable, str(script), *args], env=env)
    staged = out / ".audio_shards" / "1-of-2" / HEADER
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if staged.is_file() and json.loads(staged.read_text())["rows"] >= 4:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the shard finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    mine = sum(shard_of(f"v{i:02d}", 2) == 1 for i in range(12))
    assert 2 <= len(AudioCache(staged.parent)) // 2 < mine

    first = _targets(dataset, out, *tags, "--shard", "0/2")
    assert "1 of 2 shards still to finish (1/2)" in first
    resumed = _targets(dataset, out, *tags, "--shard", "1/2")
    assert "the 2 shards have finished" in resumed
    history = ("seconds", "videos_per_second", "already_cached", "computed")
    assert _tree(out, history) == _tree(whole, history)
