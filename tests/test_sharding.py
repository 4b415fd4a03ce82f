"""Shard assignment (stable, complete, disjoint, balanced) and the launchers' environments."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from avlabel._sharding import WHOLE, Shard, detect_shard, parse_shard, shard_of, torchrun_local_rank, usable_cpus
from avlabel.errors import AvlabelError


@dataclass(frozen=True)
class _Record:
    video_id: str


IDS = [f"abseiling_{i:05d}" for i in range(3000)] + ["-lPhMfDX4eQ_000010_000020", "müsli", "a/b", ""]


def test_the_assignment_is_a_fixed_function_of_the_id():
    # Recorded values: a change of the hash would move videos between the shards of a split that
    # is halfway through, so that shards of one split, running side by side, could compute the
    # same video at the same time.
    assert [shard_of(f"video{i}", 7) for i in range(12)] == [0, 0, 4, 4, 5, 1, 4, 4, 5, 4, 5, 1]
    assert shard_of("müsli", 1000) == shard_of("müsli", 1000)


def test_a_shard_is_the_same_whatever_the_manifest_order_or_its_other_rows():
    records = [_Record(video_id) for video_id in IDS]
    shuffled = records[:]
    random.Random(0).shuffle(shuffled)
    grown = shuffled + [_Record(f"new_{i}") for i in range(500)]
    for index in range(5):
        shard = Shard(index, 5)
        chosen = {record.video_id for record in shard.select(records)}
        assert {record.video_id for record in shard.select(shuffled)} == chosen
        assert {record.video_id for record in shard.select(grown)} - {f"new_{i}" for i in range(500)} == chosen
    # select keeps the manifest's order
    assert Shard(1, 5).select(shuffled) == [record for record in shuffled if shard_of(record.video_id, 5) == 1]


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_the_shards_of_any_split_are_disjoint_and_cover_every_video_once(count):
    records = [_Record(video_id) for video_id in IDS]
    shards = [[record.video_id for record in Shard(index, count).select(records)] for index in range(count)]
    assert sorted(video_id for shard in shards for video_id in shard) == sorted(IDS)  # complete, nothing twice
    for index, ids in enumerate(shards):
        assert all(shard_of(video_id, count) == index for video_id in ids)


def test_the_shards_are_balanced():
    sizes = [sum(shard_of(video_id, 8) == index for video_id in IDS) for index in range(8)]
    expected = len(IDS) / 8
    spread = (len(IDS) * (1 / 8) * (7 / 8)) ** 0.5  # binomial standard deviation
    assert all(abs(size - expected) < 5 * spread for size in sizes), sizes


def test_parse_shard():
    assert parse_shard("3/8") == Shard(3, 8)
    assert parse_shard(" 0 / 1 ") == WHOLE and WHOLE.whole
    assert str(Shard(3, 8)) == "3/8" and Shard(3, 8).key == "3-of-8"
    for text, message in [
        ("3/3", "--shard 3/3: shard indices are 0-based, so the index must be below the count; pass 0/3 to 2/3"),
        ("0/0", "--shard 0/0: the shard count must be at least 1"),
        ("x", "--shard 'x' is not I/N"),
        ("-1/3", "--shard '-1/3' is not I/N"),
        ("1/3/4", "is not I/N"),
        ("", "is not I/N"),
    ]:
        with pytest.raises(AvlabelError, match=message.replace("(", r"\(")):
            parse_shard(text)


SLURM = {
    "SLURM_ARRAY_TASK_ID": "5",
    "SLURM_ARRAY_TASK_COUNT": "8",
    "SLURM_ARRAY_TASK_MIN": "0",
    "SLURM_ARRAY_TASK_MAX": "7",
}
TORCHRUN = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}


def test_no_launcher_means_the_whole_manifest():
    assert detect_shard(None, {}) == WHOLE
    assert detect_shard(None, {"SLURM_JOB_ID": "1", "SLURM_PROCID": "2", "SLURM_NTASKS": "4"}) == WHOLE
    assert torchrun_local_rank({}) is None


def test_an_explicit_shard_wins_over_every_launcher():
    assert detect_shard("1/2", {**SLURM, **TORCHRUN}) == Shard(1, 2)
    assert detect_shard("0/1", SLURM) == WHOLE  # 0/1 turns detection off


def test_slurm_array_tasks():
    assert detect_shard(None, SLURM) == Shard(5, 8)
    assert detect_shard(None, SLURM).origin == "Slurm array task 5 of 8"
    # --array=1-8: ids start at 1
    offset = {
        "SLURM_ARRAY_TASK_ID": "1",
        "SLURM_ARRAY_TASK_COUNT": "8",
        "SLURM_ARRAY_TASK_MIN": "1",
        "SLURM_ARRAY_TASK_MAX": "8",
    }
    assert detect_shard(None, offset) == Shard(0, 8)
    assert detect_shard(None, {**offset, "SLURM_ARRAY_TASK_ID": "8"}) == Shard(7, 8)
    assert detect_shard(None, offset).origin == "Slurm array task 1 of 8 (ids from 1)"
    # --array=10-24:2 -> ids 10, 12, ..., 24
    stepped = {
        "SLURM_ARRAY_TASK_ID": "14",
        "SLURM_ARRAY_TASK_COUNT": "8",
        "SLURM_ARRAY_TASK_MIN": "10",
        "SLURM_ARRAY_TASK_MAX": "24",
        "SLURM_ARRAY_TASK_STEP": "2",
    }
    assert detect_shard(None, stepped) == Shard(2, 8)
    # an old Slurm without SLURM_ARRAY_TASK_COUNT: the count follows from MIN, MAX and STEP
    del stepped["SLURM_ARRAY_TASK_COUNT"]
    assert detect_shard(None, stepped) == Shard(2, 8)
    assert detect_shard(None, {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"}) == Shard(2, 3)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        # --array=1,3,9: ids that are not evenly spaced give no shard index
        (
            {
                "SLURM_ARRAY_TASK_ID": "3",
                "SLURM_ARRAY_TASK_COUNT": "3",
                "SLURM_ARRAY_TASK_MIN": "1",
                "SLURM_ARRAY_TASK_MAX": "9",
            },
            "is not one of evenly spaced ids",
        ),
        ({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "3"}, "SLURM_ARRAY_TASK_ID is 'x', not an integer"),
        ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "3"}, "is not one of evenly spaced ids"),
        ({"SLURM_ARRAY_TASK_ID": "1"}, "neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX"),
        ({"RANK": "4", "WORLD_SIZE": "4"}, "RANK 4 is not a rank of WORLD_SIZE 4"),
        ({"RANK": "0", "WORLD_SIZE": "two"}, "WORLD_SIZE is 'two', not an integer"),
    ],
)
def test_launcher_variables_that_name_no_shard_are_refused(environ, message):
    with pytest.raises(AvlabelError, match=message):
        detect_shard(None, environ)


def test_torchrun_ranks_and_their_gpus():
    assert detect_shard(None, TORCHRUN) == Shard(3, 4)
    assert detect_shard(None, TORCHRUN).origin == "torchrun RANK 3 of WORLD_SIZE 4"
    assert torchrun_local_rank(TORCHRUN) == 1
    assert torchrun_local_rank({"RANK": "0", "WORLD_SIZE": "1"}) == 0
    assert detect_shard(None, {"RANK": "0", "WORLD_SIZE": "1"}) == WHOLE


def test_torchrun_inside_a_slurm_array_splits_each_task_over_its_ranks():
    # 8 array tasks, each a node running torchrun with 4 ranks: 32 shards
    shard = detect_shard(None, {**SLURM, **TORCHRUN})
    assert shard == Shard(5 * 4 + 3, 32)
    assert shard.origin == "Slurm array task 5 of 8, torchrun RANK 3 of WORLD_SIZE 4"
    every = {
        detect_shard(None, {**SLURM, "SLURM_ARRAY_TASK_ID": str(task), "RANK": str(rank), "WORLD_SIZE": "4"})
        for task in range(8)
        for rank in range(4)
    }
    assert every == {Shard(index, 32) for index in range(32)}


def test_workers_default_to_the_cpus_this_process_may_use_shared_by_the_ranks_of_a_node():
    import os

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert usable_cpus({}) == affinity
    assert usable_cpus({**TORCHRUN, "LOCAL_WORLD_SIZE": "2"}) == max(1, affinity // 2)
    assert usable_cpus({**TORCHRUN, "LOCAL_WORLD_SIZE": "1000"}) == 1
    assert usable_cpus({"LOCAL_WORLD_SIZE": "4"}) == affinity  # not torchrun: the variable means nothing
