"""Shards of a split writing one folder: joining, waiting for each other, merging once, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avlabel._io import file_lock
from avlabel._shard_folder import DONE, ShardRun, describe_shards, missing_shards, staged_files, staging_dir
from avlabel._sharding import WHOLE, Shard
from avlabel.errors import AvlabelError

SETTINGS = {"method": "dis", "manifest_sha256": "aaa"}


class _Merges:
    """A merge that records what it was handed and writes the shards' items into one file."""

    def __init__(self, root: Path) -> None:
        self.root, self.calls = root, []

    def __call__(self, split: list[Path], abandoned: list[Path]) -> None:
        self.calls.append(([folder.name for folder in split], [folder.name for folder in abandoned]))
        items = sorted(line for folder in split + abandoned for line in (folder / "items").read_text().split())
        (self.root / "items").write_text(" ".join(items))


def _run(root: Path, shard: Shard, merge: _Merges, items: str = "", settings=SETTINGS) -> list[Shard]:
    with ShardRun(root, "test", shard, "avlabel test", settings) as run:
        (run.folder / "items").write_text(items or f"item-{shard.key}")
        return run.finish(merge)


def test_the_last_shard_to_finish_merges_the_split_once(tmp_path):
    merge = _Merges(tmp_path)
    assert _run(tmp_path, Shard(2, 3), merge) == [Shard(0, 3), Shard(1, 3)]
    assert missing_shards(tmp_path, "test") == [Shard(0, 3), Shard(1, 3)]
    assert [path.parent.name for path in staged_files(tmp_path, "test", "items")] == ["2-of-3"]
    assert _run(tmp_path, Shard(0, 3), merge) == [Shard(1, 3)]
    assert merge.calls == []
    assert _run(tmp_path, Shard(1, 3), merge) == []
    assert merge.calls == [(["0-of-3", "1-of-3", "2-of-3"], [])]
    assert (tmp_path / "items").read_text() == "item-0-of-3 item-1-of-3 item-2-of-3"
    # the staging is gone but for the record of the merged split
    assert sorted(path.name for path in staging_dir(tmp_path, "test").iterdir()) == ["merged.json"]
    assert missing_shards(tmp_path, "test") == []


def test_a_shard_that_died_is_missing_until_it_is_rerun(tmp_path):
    merge = _Merges(tmp_path)
    _run(tmp_path, Shard(0, 2), merge)
    with pytest.raises(RuntimeError):  # the process dies halfway: no done marker
        with ShardRun(tmp_path, "test", Shard(1, 2), "avlabel test", SETTINGS) as run:
            (run.folder / "items").write_text("half")
            raise RuntimeError("killed")
    assert missing_shards(tmp_path, "test") == [Shard(1, 2)] and merge.calls == []
    assert _run(tmp_path, Shard(1, 2), merge) == []
    assert merge.calls == [(["0-of-2", "1-of-2"], [])]


def test_rerunning_one_shard_of_a_merged_split_merges_what_it_adds(tmp_path):
    merge = _Merges(tmp_path)
    for index in range(3):
        _run(tmp_path, Shard(index, 3), merge)
    assert _run(tmp_path, Shard(1, 3), merge, items="again") == []  # its siblings were merged before
    assert merge.calls[-1] == (["1-of-3"], [])


def test_staging_of_an_abandoned_split_goes_to_the_merge_of_the_next(tmp_path):
    merge = _Merges(tmp_path)
    _run(tmp_path, Shard(0, 4), merge)  # a 4-way split, never finished
    assert _run(tmp_path, WHOLE, merge) == []
    assert merge.calls == [(["0-of-1"], ["0-of-4"])]
    assert missing_shards(tmp_path, "test") == []


def test_a_live_run_of_another_split_or_of_the_same_shard_is_refused(tmp_path):
    staging = staging_dir(tmp_path, "test")
    staging.mkdir()
    merge = _Merges(tmp_path)
    held = file_lock(staging / "1-of-3.lock")
    try:
        with pytest.raises(AvlabelError, match="being written by shard 1/3 of another split.*--shard I/3"):
            _run(tmp_path, WHOLE, merge)
        with pytest.raises(AvlabelError, match="is computing shard 1/3 of"):
            _run(tmp_path, Shard(1, 3), merge)
        assert _run(tmp_path, Shard(0, 3), merge) == [Shard(1, 3), Shard(2, 3)]  # its own split runs alongside
    finally:
        held.close()
    workers = file_lock(staging / "0-of-1.workers.lock", shared=True)
    try:
        with pytest.raises(AvlabelError, match="worker processes of an earlier `avlabel test`"):
            _run(tmp_path, WHOLE, merge)
    finally:
        workers.close()
    assert sorted(path.name for path in staging.iterdir() if path.is_dir()) == ["0-of-3"]  # refusals made nothing


def test_shards_that_ran_with_other_settings_are_not_merged(tmp_path):
    merge = _Merges(tmp_path)
    _run(tmp_path, Shard(0, 2), merge)
    other = {**SETTINGS, "manifest_sha256": "bbb"}
    with pytest.raises(
        AvlabelError, match=r"shard 0/2 of .* ran with manifest_sha256 'aaa' \(here 'bbb'\); run shard 1/2"
    ):
        _run(tmp_path, Shard(1, 2), merge, settings=other)  # refused when it joins, before it computes
    assert not (staging_dir(tmp_path, "test") / "1-of-2").exists()
    # shard 0/2 finishing with other settings after 1/2 joined: the merge refuses
    with ShardRun(tmp_path, "test", Shard(1, 2), "avlabel test", SETTINGS) as run:
        (run.folder / "items").write_text("item")
        marker = staging_dir(tmp_path, "test") / "0-of-2" / DONE
        marker.write_text(json.dumps({"shard": "0/2", "settings": other}))
        with pytest.raises(
            AvlabelError, match=r"shard 0/2 of .* ran with manifest_sha256 'bbb' \(here 'aaa'\); rerun it"
        ):
            run.finish(merge)
    assert merge.calls == []
    assert missing_shards(tmp_path, "test") == []  # both finished: rerunning one of them with agreeing settings merges


def test_describe_shards_names_the_first_ten():
    assert describe_shards([Shard(2, 8), Shard(5, 8)]) == "2/8, 5/8"
    assert describe_shards([Shard(index, 20) for index in range(12)]).endswith("9/20 and 2 more")
