"""Which share of a manifest this process computes: ``--shard I/N`` or the launcher's environment.

Long preprocessing jobs (``avlabel flow``, ``avlabel targets``) split a manifest over the
processes a cluster scheduler starts, with the schedulers users already run: a Slurm job array
or torchrun. Each process takes one *shard* and writes into the same output folder
(`avlabel._shard_folder` joins them).

Assignment. Video ``v`` belongs to shard ``blake2b(v) mod N`` (a 64-bit BLAKE2b digest of its UTF-8
id), so the split is

* **stable**: it depends on the id alone, not on the manifest's order or its other rows, nor on
  the machine, the process or the Python version (Python's own ``hash`` is salted per process).
  A rerun, an edited or grown manifest and a shard rerun on another node agree on every video;
* **complete and disjoint**: every video is in exactly one of the N shards, for any N, so the
  shards of any split together cover the manifest exactly once;
* **balanced**: shard sizes are binomial, within a few standard deviations of len / N.

Sources, in order of precedence:

1. ``--shard I/N`` (0-based). ``--shard 0/1`` turns detection off: the whole manifest.
2. The launcher's environment. A Slurm array task (``SLURM_ARRAY_TASK_ID``, ``_COUNT``, ``_MIN``,
   ``_MAX``, ``_STEP``) is shard ``(id - min) / step`` of ``count``, since task ids need not start
   at 0 (``--array=1-8``) nor be consecutive (``--array=0-14:2``). A torchrun process
   (``RANK``, ``WORLD_SIZE``) is shard ``RANK`` of ``WORLD_SIZE``. Both at once (a Slurm
   array whose tasks each start torchrun on one node) give ``task * WORLD_SIZE + RANK`` of
   ``count * WORLD_SIZE``.
3. Neither: the whole manifest (shard 0/1).

Plain ``srun`` tasks (``SLURM_PROCID``) are not read: ``sbatch --ntasks=4`` sets the variables for
a batch script that runs one process, which would then silently compute a quarter. Pass
``--shard $SLURM_PROCID/$SLURM_NTASKS`` under ``srun`` instead.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from avlabel.errors import AvlabelError

_Record = TypeVar("_Record")
_FORM = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def shard_of(video_id: str, count: int) -> int:
    """The shard (0..count-1) video ``video_id`` belongs to in a split into ``count``."""
    digest = hashlib.blake2b(video_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based); ``origin`` says where it came from, for messages."""

    index: int
    count: int
    origin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        assert 0 <= self.index < self.count, (self.index, self.count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def whole(self) -> bool:
        """The whole manifest: no split."""
        return self.count == 1

    @property
    def key(self) -> str:
        """The shard as a file name: ``3-of-8``."""
        return f"{self.index}-of-{self.count}"

    def holds(self, video_id: str) -> bool:
        return shard_of(video_id, self.count) == self.index

    def select(self, records: Iterable[_Record]) -> list[_Record]:
        """The records (anything with a ``video_id``) of this shard, in their order."""
        if self.whole:
            return list(records)
        return [record for record in records if self.holds(record.video_id)]

    def describe(self) -> str:
        """``shard 3/8 (SLURM_ARRAY_TASK_ID=3)`` or ``the whole manifest``."""
        if self.whole:
            return "the whole manifest"
        return f"shard {self}" + (f" ({self.origin})" if self.origin else "")


WHOLE = Shard(0, 1)


def parse_shard(text: str, option: str = "--shard") -> Shard:
    """``"I/N"`` -> `Shard`; a one-line `AvlabelError` for anything else.

    Raises:
        AvlabelError: not two integers ``I/N``, ``N`` below 1, or ``I`` not below ``N``.
    """
    match = _FORM.fullmatch(text)
    if match is None:
        raise AvlabelError(
            f"{option} {text!r} is not I/N; pass the 0-based shard index and the shard count, e.g. {option} 3/8"
        )
    index, count = int(match[1]), int(match[2])
    if count < 1:
        raise AvlabelError(f"{option} {text}: the shard count must be at least 1; pass e.g. {option} 0/1 (no split)")
    if index >= count:
        raise AvlabelError(
            f"{option} {text}: shard indices are 0-based, so the index must be below the count; "
            f"pass 0/{count} to {count - 1}/{count}"
        )
    return Shard(index, count, option)


def detect_shard(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> Shard:
    """This process's shard: ``explicit`` (``--shard I/N``), else the launcher's environment, else `WHOLE`.

    Raises:
        AvlabelError: ``explicit`` is not ``I/N`` with ``0 <= I < N``, launcher variables that
            are not integers, or a Slurm array whose task ids are not evenly spaced (pass
            ``--shard`` then).
    """
    if explicit is not None:
        return parse_shard(explicit)
    environ = os.environ if environ is None else environ
    slurm = _slurm_array(environ)
    torchrun = _torchrun(environ)
    if slurm is None and torchrun is None:
        return WHOLE
    if slurm is None or torchrun is None:
        return slurm or torchrun
    return Shard(
        slurm.index * torchrun.count + torchrun.index,
        slurm.count * torchrun.count,
        f"{slurm.origin}, {torchrun.origin}",
    )


def torchrun_local_rank(environ: Mapping[str, str] | None = None) -> int | None:
    """``LOCAL_RANK`` of a process started by torchrun (its GPU on the node), else None."""
    environ = os.environ if environ is None else environ
    if _torchrun(environ) is None:
        return None
    return _integer(environ, "LOCAL_RANK", default=0, fix="it is set by torchrun; unset it outside torchrun")


def usable_cpus(environ: Mapping[str, str] | None = None) -> int:
    """CPU cores this process may use, shared fairly with the other torchrun processes of its node.

    The process's CPU affinity, which is what a Slurm allocation (``--cpus-per-task``), a
    cpuset or ``taskset`` leaves it; ``os.cpu_count()`` would count every core of the node and
    start that many workers in each task. Under torchrun, split among ``LOCAL_WORLD_SIZE`` ranks.
    """
    environ = os.environ if environ is None else environ
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows: no affinity call
        cpus = os.cpu_count() or 1
    ranks = 1
    if _torchrun(environ) is not None:
        ranks = max(1, _integer(environ, "LOCAL_WORLD_SIZE", default=1, fix="it is set by torchrun"))
    return max(1, cpus // ranks)


def _slurm_array(environ: Mapping[str, str]) -> Shard | None:
    if "SLURM_ARRAY_TASK_ID" not in environ:
        return None
    fix = "these are set by Slurm for array tasks; pass --shard I/N to choose the shard yourself"
    task = _integer(environ, "SLURM_ARRAY_TASK_ID", fix=fix)
    first = _integer(environ, "SLURM_ARRAY_TASK_MIN", default=0, fix=fix)
    step = _integer(environ, "SLURM_ARRAY_TASK_STEP", default=1, fix=fix)
    last = _integer(environ, "SLURM_ARRAY_TASK_MAX", default=None, fix=fix)
    count = _integer(environ, "SLURM_ARRAY_TASK_COUNT", default=None, fix=fix)
    if count is None:
        if last is None:
            raise AvlabelError(
                "SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX is, so the "
                "number of shards is unknown; pass --shard $SLURM_ARRAY_TASK_ID/N"
            )
        count = (last - first) // max(step, 1) + 1
    offset = task - first
    evenly_spaced = (
        step >= 1
        and count >= 1
        and offset >= 0
        and offset % step == 0
        and (last is None or last == first + (count - 1) * step)
    )
    index = offset // step if step >= 1 else -1
    if not evenly_spaced or not 0 <= index < count:
        raise AvlabelError(
            f"Slurm array task {task} (ids {first} to {last if last is not None else '?'}, step {step}, {count} tasks) is "
            "not one of evenly spaced ids, so its shard is ambiguous; submit the array as --array=0-(N-1) or pass "
            "--shard I/N (e.g. when resubmitting some tasks of an N-task array: --shard $SLURM_ARRAY_TASK_ID/N)"
        )
    ids = ", ".join(([f"ids from {first}"] if first else []) + ([f"step {step}"] if step != 1 else []))
    return Shard(index, count, f"Slurm array task {task} of {count}" + (f" ({ids})" if ids else ""))


def _torchrun(environ: Mapping[str, str]) -> Shard | None:
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    fix = "they are set by torchrun; unset them outside torchrun, or pass --shard I/N"
    rank = _integer(environ, "RANK", fix=fix)
    world = _integer(environ, "WORLD_SIZE", fix=fix)
    if world < 1 or not 0 <= rank < world:
        raise AvlabelError(f"RANK {rank} is not a rank of WORLD_SIZE {world}; {fix}")
    return Shard(rank, world, f"torchrun RANK {rank} of WORLD_SIZE {world}")


_MISSING = object()


def _integer(environ: Mapping[str, str], name: str, *, fix: str, default=_MISSING):
    text = environ.get(name)
    if text is None or (not text.strip() and default is not _MISSING):
        if default is _MISSING:
            raise AvlabelError(f"{name} is not set; {fix}")
        return default
    try:
        return int(text)
    except ValueError:
        raise AvlabelError(f"{name} is {text!r}, not an integer; {fix}") from None
