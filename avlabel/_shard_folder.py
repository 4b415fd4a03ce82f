"""Shards of one job writing one output folder together, and the step that joins their work.

The processes of a split (`avlabel._sharding`) run at the same time, on one node or many,
into the same output folder. Files every item has to itself (a video's flow) go straight to their
place; files the whole folder shares (an index, source records, an error log) are written per
shard into a staging folder and joined by a *merge*, which the last shard to finish runs. Nothing
is appended to a shared file from two nodes: ``O_APPEND`` is not atomic across NFS clients.

Layout, for a store ``S`` (``flow``, ``audio``) in the folder ``OUT``::

    OUT/.S.lock                   the folder lock: held briefly, to join the folder and to merge
    OUT/.S_shards/I-of-N.lock     held by the process computing shard I of N for its whole run
    OUT/.S_shards/I-of-N.workers.lock   held (shared) by that process's worker processes, if any
    OUT/.S_shards/I-of-N/         the shard's own files; the store decides what they are
    OUT/.S_shards/I-of-N/shard_done.json   written when the shard has finished: the settings it ran with
    OUT/.S_shards/merged.json     the shard count of the split merged last

A run of the whole manifest is the split into one shard (``0-of-1``) and goes the same way.

Rules (`ShardRun`):

* **Join** (under the folder lock): refuse when this shard is running already (its lock is held,
  or its workers are still alive after their parent was killed), and when a run of another
  split is alive: two splits at once would compute the same items twice, and a merge of one
  would take the other's staging away. Then take the shard's lock, drop its done marker (it is
  running again) and create its folder.
* **Finish**: write the done marker, then, under the folder lock, if every shard of the split is
  done (by its marker, or by an earlier merge of the same split recorded in ``merged.json``, so
  that rerunning one shard of a merged split merges what it adds), check that the staged shards
  ran with the same settings, hand their folders to the store's merge and remove them. A shard
  that died has no marker: rerun it, it resumes and finishes.
* Staging left by an abandoned split (another N, not running) is handed to the merge as well,
  since items it finished may already be in place, then removed.

``flock`` locks are released by the kernel when their process dies, however it dies, so a
``kill -9`` never leaves a folder locked; on network file systems they need the file system's
lock support (NFS with ``lockd``, Lustre mounted with ``-o flock``).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from avlabel._io import atomic_write_json, file_lock
from avlabel._sharding import Shard
from avlabel.errors import AvlabelError, reading

DONE = "shard_done.json"
MERGED = "merged.json"
_KEY = re.compile(r"(\d+)-of-(\d+)")


def staging_dir(root: str | Path, store: str) -> Path:
    return Path(root) / f".{store}_shards"


def staged_files(root: str | Path, store: str, name: str) -> list[Path]:
    """The file ``name`` of every shard staged in ``root`` (finished or not, of any split), in shard order."""
    return [folder / name for _, folder in _staged(staging_dir(root, store)) if (folder / name).is_file()]


def folder_shard(folder: Path) -> Shard:
    """The shard whose staging folder ``folder`` is (a folder handed to a merge)."""
    match = _KEY.fullmatch(folder.name)
    assert match is not None, folder
    return Shard(int(match[1]), int(match[2]))


def missing_shards(root: str | Path, store: str) -> list[Shard]:
    """Shards of splits staged in ``root`` that have not finished (empty: nothing is waiting to be merged)."""
    staging = staging_dir(root, store)
    merged_count = _merged_count(staging)
    missing = []
    for count in sorted({shard.count for shard, _ in _staged(staging)}):
        missing.extend(_unfinished(staging, count, merged_count))
    return missing


def merge_status(shard: Shard, waiting: list[Shard], root: str | Path) -> str:
    """What `ShardRun.finish` did, in a line for the user."""
    if not waiting:
        return f"the {shard.count} shards have finished; merged them into {root}"
    return (
        f"{len(waiting)} of {shard.count} shards still to finish ({describe_shards(waiting)}); the last to finish "
        f"merges them into {root}"
    )


def describe_shards(shards: list[Shard]) -> str:
    """``2/8, 5/8`` (the first ten, then how many more)."""
    shown = ", ".join(str(shard) for shard in shards[:10])
    return shown + (f" and {len(shards) - 10} more" if len(shards) > 10 else "")


class ShardRun:
    """One process's share of writing the folder ``root`` (see the module docs); a context manager.

    Args:
        root: the output folder (created).
        store: the store's name in the staging files (``flow``, ``audio``).
        shard: which shard this process computes (`avlabel._sharding.WHOLE` for the whole manifest).
        command: the command as the user knows it (``avlabel flow``), named in refusals.
        settings: what the shard's output depends on (JSON values: options, the manifest's
            hash); the shards of a split must agree on them, which is checked when a shard joins
            (against those finished already) and again at the merge.

    Attributes:
        folder: this shard's own staging folder.
        workers_lock: the lock file its worker processes hold shared while they run.
    """

    def __init__(self, root: str | Path, store: str, shard: Shard, command: str, settings: Mapping[str, Any]):
        self.root, self.store, self.shard, self.command = Path(root), store, shard, command
        self.settings = dict(settings)
        self.staging = staging_dir(root, store)
        self.folder = self.staging / shard.key
        self.workers_lock = self.staging / f"{shard.key}.workers.lock"
        self._lock: IO[str] | None = None

    def __enter__(self) -> ShardRun:
        with self._folder_lock():
            self._refuse_other_live_splits()
            finished = [
                folder
                for shard, folder in _staged(self.staging)
                if shard.count == self.shard.count and shard != self.shard and (folder / DONE).is_file()
            ]
            _check_agreement(
                self.root,
                finished,
                self.settings,
                f"run shard {self.shard} with the options and manifest of the finished shards, or use another output folder",
            )
            busy, run_lock = self._busy_message(), self.staging / f"{self.shard.key}.lock"
            if _held(run_lock):
                raise AvlabelError(busy)
            if _held(self.workers_lock):  # the run was killed, its workers are not gone yet
                raise AvlabelError(
                    f"worker processes of an earlier `{self.command}` into {self.root} are still running; wait for them to exit"
                )
            self._lock = file_lock(run_lock, busy=busy)  # nothing created before this point: a refusal writes nothing
            (self.folder / DONE).unlink(missing_ok=True)
            self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def finish(
        self, merge: Callable[[list[Path], list[Path]], None], record: Mapping[str, Any] | None = None
    ) -> list[Shard]:
        """Mark this shard done; if the split is complete, merge it.

        Args:
            merge: called under the folder lock as ``merge(split, abandoned)``: the staging
                folders of the complete split in shard order, and those of abandoned splits.
            record: what the shard's run did (JSON values), kept in its done marker for the merge
                to read (`shard_record`).

        Returns:
            The shards of this split that have not finished (empty: the split was merged).

        Raises:
            AvlabelError: the split is complete but its shards ran with different settings.
        """
        marker = {"shard": str(self.shard), "settings": self.settings, "run": dict(record or {})}
        atomic_write_json(self.folder / DONE, marker)
        with self._folder_lock():
            return merge_split(self.root, self.store, self.shard.count, self.settings, merge, self.command)

    def _folder_lock(self):
        return folder_lock(self.root, self.store)

    def _busy_message(self) -> str:
        if self.shard.whole:
            return f"another `{self.command}` is writing {self.root}; wait for it to finish"
        return f"another `{self.command}` is computing shard {self.shard} of {self.root}; wait for it to finish"

    def _refuse_other_live_splits(self) -> None:
        for lock in sorted(self.staging.glob("*.lock")):
            match = _KEY.match(lock.name)
            if match is None or int(match[2]) == self.shard.count or not _held(lock):
                continue
            other = Shard(int(match[1]), int(match[2]))
            running = "a run of the whole manifest" if other.whole else f"shard {other} of another split"
            ours = "the whole manifest" if self.shard.whole else f"shard {self.shard}"
            fix = (
                f"wait for it to finish, or run shards of its split (--shard I/{other.count})"
                if not other.whole
                else "wait for it to finish"
            )
            raise AvlabelError(
                f"{self.root} is being written by {running} ({self.command}), so {ours} would compute the same "
                f"videos at the same time; {fix}"
            )


def folder_lock(root: str | Path, store: str) -> IO[str]:
    """Hold the folder lock of ``root`` (waiting for it: it is held only to join or to merge); close to release."""
    staging_dir(root, store).mkdir(parents=True, exist_ok=True)
    return file_lock(Path(root) / f".{store}.lock")


def shard_record(folder: Path) -> dict:
    """What the run of the finished shard staged in ``folder`` recorded (`ShardRun.finish`)."""
    path = folder / DONE
    with reading(f"shard record {path}", f"delete {path} and rerun shard {folder_shard(folder)}"):
        return dict(json.loads(path.read_text(encoding="utf-8")).get("run", {}))


def merge_staged(
    root: str | Path,
    store: str,
    settings: Mapping[str, Any],
    merge: Callable[[list[Path], list[Path]], None],
    command: str,
) -> bool:
    """Merge the split staged in ``root`` without computing a shard (an explicit merge step).

    Returns:
        Whether a split was merged (False: nothing was staged).

    Raises:
        AvlabelError: finished shards that ran with other ``settings``, or shards of the split
            still to finish (named).
    """
    if not _staged(staging_dir(root, store)):
        return False  # nothing staged: nothing to lock or create
    with folder_lock(root, store):
        staging = staging_dir(root, store)
        staged = _staged(staging)
        if not staged:
            return False
        finished = [folder for _, folder in staged if (folder / DONE).is_file()]
        _check_agreement(
            root,
            finished,
            settings,
            f"merge with the options and manifest shard {{shard}} ran with, or rerun it with these (`{command} --shard {{shard}}`)",
        )
        merged_count = _merged_count(staging)
        counts = sorted({shard.count for shard, _ in staged})
        complete = [count for count in counts if not _unfinished(staging, count, merged_count)]
        if not complete:
            missing = [shard for count in counts for shard in _unfinished(staging, count, merged_count)]
            raise AvlabelError(
                f"shards {describe_shards(missing)} of {root} have not finished, so there is nothing whole to merge; "
                f"run them (`{command} --shard I/N`; a shard that died resumes), the last to finish merges"
            )
        merge_split(root, store, complete[-1], settings, merge, command)
        return True


def merge_split(
    root: str | Path,
    store: str,
    count: int,
    settings: Mapping[str, Any],
    merge: Callable[[list[Path], list[Path]], None],
    command: str,
) -> list[Shard]:
    """Merge the staged split into ``count`` shards if it is complete; call under the folder lock.

    Returns the shards still missing (empty: merged, or nothing staged for this split).
    """
    staging = staging_dir(root, store)
    missing = _unfinished(staging, count, _merged_count(staging))
    if missing:
        return missing
    split = [folder for shard, folder in _staged(staging) if shard.count == count]
    abandoned = [folder for shard, folder in _staged(staging) if shard.count != count]
    _check_agreement(
        root,
        split,
        settings,
        f"rerun it with the options and manifest of the other shards (`{command} --shard {{shard}}` resumes it), "
        "or use another output folder",
    )
    merge(split, abandoned)
    atomic_write_json(staging / MERGED, {"count": count})
    for folder in split + abandoned:
        shutil.rmtree(folder)
        for lock in (folder.with_name(f"{folder.name}.lock"), folder.with_name(f"{folder.name}.workers.lock")):
            lock.unlink(missing_ok=True)  # finished shards hold nothing; a new run of one creates it again
    return []


def _staged(staging: Path) -> list[tuple[Shard, Path]]:
    """Every shard folder in ``staging`` with its shard, ordered by split then index."""
    if not staging.is_dir():
        return []
    found = []
    for entry in staging.iterdir():
        match = _KEY.fullmatch(entry.name)
        if match is not None and entry.is_dir() and int(match[1]) < int(match[2]):
            found.append((Shard(int(match[1]), int(match[2])), entry))
    return sorted(found, key=lambda item: (item[0].count, item[0].index))


def _unfinished(staging: Path, count: int, merged_count: int | None) -> list[Shard]:
    """Shards of the split into ``count`` without a done marker; after a merge of that split, only those staged again."""
    staged = {shard.index for shard, _ in _staged(staging) if shard.count == count}
    candidates = staged if merged_count == count else range(count)
    return [Shard(index, count) for index in candidates if not (staging / f"{index}-of-{count}" / DONE).is_file()]


def _merged_count(staging: Path) -> int | None:
    """The shard count of the split merged last (``merged.json``), or None."""
    path = staging / MERGED
    if not path.is_file():
        return None
    with reading(f"shard merge record {path}", f"delete {path} and rerun every shard (they resume)"):
        return int(json.loads(path.read_text(encoding="utf-8"))["count"])


def _check_agreement(root, split: list[Path], settings: Mapping[str, Any], fix: str) -> None:
    """Every shard of ``split`` (finished shard folders) ran with ``settings``; ``fix`` ends the refusal."""
    for folder in split:
        path = folder / DONE
        shard = folder.name.replace("-of-", "/")
        with reading(f"shard record {path}", f"delete {path} and rerun shard {shard}"):
            theirs = json.loads(path.read_text(encoding="utf-8"))["settings"]
        different = {key: theirs.get(key) for key in settings if theirs.get(key) != settings[key]}
        if different:
            described = ", ".join(f"{key} {value!r} (here {settings[key]!r})" for key, value in different.items())
            raise AvlabelError(f"shard {shard} of {root} ran with {described}; {fix.format(shard=shard)}")


def _held(lock: Path) -> bool:
    """Whether a live process holds ``lock`` (tested without waiting, and without creating it)."""
    if not lock.is_file():
        return False
    try:
        file_lock(lock, busy="").close()
    except AvlabelError:
        return True
    return False
