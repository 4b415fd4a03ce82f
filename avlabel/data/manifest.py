"""The one dataset format: a CSV manifest with one row per clip.

Columns: ``video_id,path,label,split,start,end``. ``start``/``end`` (seconds inside the file) are
optional and left empty for whole files. Relative paths resolve against the CSV's own folder, so a
dataset folder with its manifest can be moved or mounted elsewhere; `write_manifest` writes
paths relative to the CSV when the video lives below it.

`read_manifest` validates everything at once and reports every problem class in one
error: missing columns, empty fields, bad times, duplicate ``video_id``s, labels outside the
label set (with suggestions), missing files. Every dataset adapter (`avlabel.data.adapters`)
writes this format, and everything downstream (flow, audio targets, training) reads only it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from avlabel._io import atomic_write_text
from avlabel.errors import AvlabelError, reading

if TYPE_CHECKING:
    from avlabel.labels import LabelSet

COLUMNS = ("video_id", "path", "label", "split", "start", "end")
_REQUIRED = COLUMNS[:4]
_SHOWN = 5  # how many offending rows an error message lists


@dataclass(frozen=True)
class ClipRecord:
    """One clip: a whole video file, or the ``[start, end)`` seconds of it."""

    video_id: str  # unique in the manifest; names flow files and audio-cache rows
    path: Path  # absolute
    label: str
    split: str  # "train", "val", "test", ...
    start: float | None = None  # seconds from the file's start; None: from the beginning
    end: float | None = None  # None: to the end of the file

    def __post_init__(self):
        if not isinstance(self.path, Path):
            object.__setattr__(self, "path", Path(self.path))


class Manifest:
    """An ordered list of `ClipRecord` plus the CSV it came from (if any)."""

    def __init__(self, records: Iterable[ClipRecord], path: str | os.PathLike[str] | None = None):
        self.records: list[ClipRecord] = list(records)
        self.path: Path | None = Path(path) if path is not None else None

    def split(self, name: str) -> Manifest:
        """The rows of split ``name`` (same order); an unknown split raises with the ones present."""
        rows = [record for record in self.records if record.split == name]
        if not rows:
            raise AvlabelError(
                f"manifest {self._where()} has no rows in split {name!r}; its splits are: {', '.join(self.splits()) or 'none'}"
            )
        return Manifest(rows, self.path)

    def splits(self) -> list[str]:
        """Split names in first-seen order."""
        return list(dict.fromkeys(record.split for record in self.records))

    def labels(self) -> list[str]:
        """The distinct labels, sorted."""
        return sorted({record.label for record in self.records})

    @property
    def sha256(self) -> str:
        """Hash of the rows (ids, file names, labels, splits, times) — not of where files live.

        Moving a dataset to another disk keeps the hash; changing any row changes it.
        """
        digest = hashlib.sha256()
        for record in self.records:
            row = (record.video_id, record.path.name, record.label, record.split, _fmt(record.start), _fmt(record.end))
            digest.update(("\x1f".join(row) + "\n").encode())
        return digest.hexdigest()

    def _where(self) -> str:
        return str(self.path) if self.path else "(in memory)"

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[ClipRecord]:
        return iter(self.records)

    def __getitem__(self, index: int) -> ClipRecord:
        return self.records[index]

    def __repr__(self) -> str:
        return f"Manifest({len(self)} clips, splits={self.splits()}, path={self._where()})"


def read_manifest(
    path: str | os.PathLike[str], label_set: LabelSet | None = None, check_files: bool = True
) -> Manifest:
    """Read and validate a manifest CSV.

    Args:
        path: the CSV.
        label_set: when given, every label must be in it (case- and whitespace-insensitive; the
            label set's spelling is kept).
        check_files: whether every video file must exist.

    Raises:
        AvlabelError: listing every kind of problem found (first few rows of each).
    """
    path = Path(path)
    if not path.is_file():
        raise AvlabelError(f"manifest not found: {path}; create one with `avlabel data manifest` or `avlabel synth`")
    with reading(f"manifest {path}", "save it as a UTF-8 CSV"):
        text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    missing_columns = [column for column in _REQUIRED if column not in (reader.fieldnames or [])]
    if missing_columns:
        raise AvlabelError(
            f"manifest {path} lacks column(s) {', '.join(missing_columns)}; "
            f"the header must be {','.join(COLUMNS)} (start,end optional)"
        )
    problems: dict[str, list[str]] = {}
    records = []
    for line, row in enumerate(reader, start=2):
        record = _parse_row(row, line, path.parent, problems)
        if record is not None:
            records.append(record)
    if not records and not problems:
        raise AvlabelError(f"manifest {path} has a header but no rows; add one row per clip")

    duplicates = [video_id for video_id, count in Counter(r.video_id for r in records).items() if count > 1]
    if duplicates:
        problems["duplicate video_id"] = duplicates
    if label_set is not None:
        records = _canonical_labels(records, label_set, problems)
    if check_files:
        missing = [str(record.path) for record in records if not record.path.is_file()]
        if missing:
            problems[f"missing file ({len(missing)} of {len(records)})"] = missing
    if problems:
        report = "; ".join(
            f"{kind}: {', '.join(items[:_SHOWN])}{' ...' if len(items) > _SHOWN else ''}"
            for kind, items in problems.items()
        )
        raise AvlabelError(f"manifest {path} is invalid — {report}; fix these rows (or regenerate the manifest)")
    return Manifest(records, path)


def write_manifest(manifest_or_records: Manifest | Iterable[ClipRecord], path: str | os.PathLike[str]) -> Path:
    """Write records as a manifest CSV (atomically). Paths below the CSV's folder are stored relative."""
    path = Path(path)
    root = path.parent.resolve()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in manifest_or_records:
        file_path = Path(record.path).resolve()
        stored = file_path.relative_to(root).as_posix() if file_path.is_relative_to(root) else str(file_path)
        writer.writerow([record.video_id, stored, record.label, record.split, _fmt(record.start), _fmt(record.end)])
    atomic_write_text(path, buffer.getvalue())
    return path


def _parse_row(row: dict, line: int, root: Path, problems: dict[str, list[str]]) -> ClipRecord | None:
    values = {column: (row.get(column) or "").strip() for column in COLUMNS}
    empty = [column for column in _REQUIRED if not values[column]]
    if empty:
        problems.setdefault("empty field", []).append(f"line {line} ({', '.join(empty)})")
        return None
    try:
        start = float(values["start"]) if values["start"] else None
        end = float(values["end"]) if values["end"] else None
    except ValueError:
        problems.setdefault("start/end not a number", []).append(f"line {line}")
        return None
    if (start is not None and start < 0) or (start is not None and end is not None and end <= start):
        problems.setdefault("start/end out of order", []).append(f"line {line} ({start}, {end})")
        return None
    file_path = Path(values["path"]).expanduser()
    return ClipRecord(
        video_id=values["video_id"],
        path=file_path if file_path.is_absolute() else (root / file_path).resolve(),
        label=values["label"],
        split=values["split"],
        start=start,
        end=end,
    )


def _canonical_labels(
    records: list[ClipRecord], label_set: LabelSet, problems: dict[str, list[str]]
) -> list[ClipRecord]:
    canonical: dict[str, str] = {}
    unknown: list[str] = []
    for label in dict.fromkeys(record.label for record in records):
        try:
            canonical[label] = label_set.labels[label_set.index(label)]
        except AvlabelError as error:
            unknown.append(f"{label!r} ({error})" if len(unknown) < 2 else repr(label))
    if unknown:
        problems[f"label not in label set {label_set.name!r}"] = unknown
        return records
    return [replace(record, label=canonical[record.label]) for record in records]


def _fmt(value: float | None) -> str:
    return "" if value is None else repr(float(value))
