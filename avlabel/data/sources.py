"""Which file every item of an audio cache or a flow folder was computed from.

Both stores are keyed by ``video_id``, and two datasets can share ids (two draws of the
synthetic benchmark, two subsets of Kinetics). Reading one dataset's cache for another's
manifest would pair each video with another video's audio or flow and give a result that looks
like any other (an evaluation at 0% top-1, exit status 0). So each item records its *source*
when it is computed: the file's name, its size in bytes and the clip bounds, a fingerprint of
id + path + size. Every reader checks the sources of the items it is about to use against its
manifest and refuses a mismatch with a message naming the manifest the store was built from
and the one in use.

The file *name* is recorded, not the full path (as in `Manifest.sha256`): a dataset moved
or mounted elsewhere still matches, while a different file under the same id (other bytes,
another name, other bounds) does not.

Layout: a TSV file of lines ``video_id, name, size, start, end, manifest``, appended (one write
on an ``O_APPEND`` descriptor, so worker processes can share the file) and synced *before* the
item's output becomes visible. A reader takes the last line of each id. A run killed in between
leaves the line of an item that was never finished, which is harmless: the rerun computes the
item again and appends a new line. The shards of a sharded job (`avlabel._shard_folder`) append
to files of their own, which readers read together with the store's until the merge writes the
store's file in its final form (`recorded_lines`).

Stores written before sources were recorded have no such file. They are accepted with a warning
rather than refused: refusing would force recomputing every existing audio cache (hours of AST
on a GPU for Kinetics) and flow folder (days of CPU) to guard against a mistake the warning
already points out, and rebuilding the store turns the check on.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from avlabel.data.manifest import _fmt as _bound
from avlabel.errors import AvlabelError, AvlabelWarning, reading

_SHOWN = 3  # mismatching clips named in a message
SourcePaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


@dataclass(frozen=True)
class ClipSource:
    """The fingerprint of the file behind one item (``size`` None: the file is missing)."""

    name: str
    size: int | None
    start: str  # clip bounds as the manifest writes them ("" for the whole file)
    end: str

    @classmethod
    def of(cls, record) -> ClipSource:
        """The source of a `ClipRecord` as it is on disk now."""
        try:
            size = os.stat(record.path).st_size
        except OSError:
            size = None
        return cls(Path(record.path).name, size, _bound(record.start), _bound(record.end))

    def describe(self) -> str:
        bounds = f" [{self.start or 'start'}, {self.end or 'end'}]" if self.start or self.end else ""
        return f"{self.name}{bounds}, {'missing' if self.size is None else f'{self.size} bytes'}"


def source_lines(records: Iterable, manifest: str | os.PathLike[str] | None) -> str:
    """The lines recording ``records`` (read from disk now) as built from ``manifest``."""
    origin = str(Path(manifest).resolve()) if manifest is not None else ""
    return _format_lines((record.video_id, ClipSource.of(record), origin) for record in records)


def recorded_lines(recorded: dict[str, tuple[ClipSource, str]], video_ids: Iterable[str] | None = None) -> str:
    """The lines of ``recorded`` (as `read_sources` returns it) for ``video_ids`` in that order (default: all, in id order).

    In id order it is the form a store's record takes once its shards are merged: it depends on
    what was computed, not on the order in which shards or worker processes finished.
    """
    ids = sorted(recorded) if video_ids is None else video_ids
    return _format_lines((video_id, *recorded[video_id]) for video_id in ids)


def _format_lines(entries: Iterable[tuple[str, ClipSource, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    for video_id, source, origin in entries:
        size = "" if source.size is None else source.size
        writer.writerow([video_id, source.name, size, source.start, source.end, origin])
    return buffer.getvalue()


def append_sources(path: str | os.PathLike[str], lines: str) -> None:
    """Append ``lines`` in one synced write (safe from several processes at once)."""
    if not lines:
        return
    handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(handle, lines.encode("utf-8"))
        os.fsync(handle)
    finally:
        os.close(handle)


def read_sources(paths: SourcePaths) -> dict[str, tuple[ClipSource, str]] | None:
    """``video_id -> (source, manifest it came from)``, the last line of each id; None without a file.

    ``paths`` is one file or several (a store's own and those of its unmerged shards), read in
    order, so a later file's line for an id wins.
    """
    paths = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(path) for path in paths]
    existing = [path for path in paths if path.is_file()]
    if not existing:
        return None
    recorded: dict[str, tuple[ClipSource, str]] = {}
    for path in existing:
        recorded.update(_read_source_lines(path))
    return recorded


def _read_source_lines(path: Path) -> dict[str, tuple[ClipSource, str]]:
    recorded: dict[str, tuple[ClipSource, str]] = {}
    with (
        reading(f"source records {path}", "delete the folder and rebuild it"),
        open(path, newline="", encoding="utf-8") as handle,
    ):
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) != 6:
                continue  # a line cut short by a crash: that item was never finished
            video_id, name, size, start, end, manifest = row
            recorded[video_id] = (ClipSource(name, int(size) if size else None, start, end), manifest)
    return recorded


def check_sources(
    paths: SourcePaths,
    records: Sequence,
    manifest: str | os.PathLike[str] | None,
    *,
    store: str,
    fix: str,
    bounds: bool = True,
) -> None:
    """Refuse to read items of ``store`` whose recorded source differs from ``records``' files.

    Args:
        paths: the store's source records (one file, or several read as one; see `read_sources`).
        records: the manifest records about to be read from the store (those it holds).
        manifest: the manifest they come from (named in the message).
        store: the store as the user knows it, e.g. ``"audio cache /data/audio"``.
        fix: what to do about a mismatch.
        bounds: compare clip bounds too (audio windows depend on them; flow covers whole files).

    Raises:
        AvlabelError: some records are other files than the ones the store was built from.
    """
    if not records:
        return
    recorded = read_sources(paths)
    if recorded is None:
        warnings.warn(
            f"the {store} was built before avlabel recorded which file each item came from, so it cannot be "
            f"checked against {manifest or 'these clips'}; rebuild it to have it checked",
            AvlabelWarning,
            stacklevel=2,
        )
        return
    mismatched, unrecorded = [], 0
    for record in records:
        entry = recorded.get(record.video_id)
        if entry is None:
            unrecorded += 1
            continue
        then, now = entry[0], ClipSource.of(record)
        if now.size is None:
            continue  # a missing file fails on its own, as an unreadable item
        if (then.name, then.size) != (now.name, now.size) or (
            bounds and (then.start, then.end) != (now.start, now.end)
        ):
            mismatched.append((record.video_id, then, now, entry[1]))
    if mismatched:
        origins = sorted({origin or "clips outside any manifest" for *_, origin in mismatched})
        examples = "; ".join(
            f"{video_id}: {then.describe()} there, {now.describe()} here"
            for video_id, then, now, _ in mismatched[:_SHOWN]
        )
        raise AvlabelError(
            f"the {store} was built from {' and '.join(origins)}, not from {manifest or 'these clips'}: {len(mismatched)} of "
            f"{len(records)} clips are other files under the same video_id ({examples}); {fix}"
        )
    if unrecorded:
        warnings.warn(
            f"{unrecorded} of {len(records)} clips in the {store} were computed before avlabel recorded their source files, so "
            f"they cannot be checked against {manifest or 'these clips'}; rebuild it to have them checked",
            AvlabelWarning,
            stacklevel=2,
        )
