"""Build a manifest from the dataset layouts people already have on disk.

Each adapter reads the dataset's own annotation/split files and looks the videos up in an index
of every video file below ``root`` (by file name, then by stem), so it does not care whether
videos sit in class folders, split folders or one flat folder, nor which container a downloader
chose. Videos listed by the annotations but absent on disk are *counted and listed*, not fatal:
a real Kinetics copy always lacks a few percent of YouTube videos.

- ``kinetics``: Kinetics-400/600/700 CSVs (``label,youtube_id,time_start,time_end,split``) in
  ``root/annotations`` or ``root``; files named ``{youtube_id}_{start:06d}_{end:06d}.<ext>``
  (or just ``{youtube_id}.<ext>``). ``validate``/``validation`` become split ``val``.
- ``ucf101``: ``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt`` (split N = 1, 2, 3).
- ``hmdb51``: ``<class>_test_split<N>.txt`` files (1 = train, 2 = test, 0 = unused in split N).
- ``folders``: ``root/<class>/...`` or ``root/<split>/<class>/...`` (split folders named
  train/val/validation/test); without split folders every clip is in split ``train``.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from avlabel.data.manifest import ClipRecord
from avlabel.errors import AvlabelError, reading

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".3gp", ".wmv", ".ts"}
)
_CSV_FIX = "save it as a UTF-8 CSV (label,youtube_id,time_start,time_end,split)"
_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validate": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


@dataclass
class AdapterResult:
    """What an adapter found: the records, the videos it could not find, rows it skipped and why."""

    records: list[ClipRecord]
    missing: list[str] = field(default_factory=list)  # one line per missing video: "split\tlabel\texpected name"
    skipped: Counter = field(default_factory=Counter)  # reason -> rows skipped (not counting missing videos)


def build_records(format: str, root: str | os.PathLike[str], **options) -> AdapterResult:
    """Run the adapter ``format`` (kinetics, ucf101, hmdb51, folders) on dataset folder ``root``."""
    if format not in ADAPTERS:
        raise AvlabelError(f"unknown dataset format {format!r}; choose one of {', '.join(ADAPTERS)}")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise AvlabelError(f"dataset root {root} is not a folder; pass the folder that holds the videos")
    return ADAPTERS[format](root, **options)


def kinetics_records(root: Path, annotations: list[Path] | None = None) -> AdapterResult:
    """Kinetics-400/600/700: annotation CSVs + trimmed clips named by youtube id and times."""
    csv_files = [Path(path) for path in annotations] if annotations else _kinetics_csvs(root)
    if not csv_files:
        raise AvlabelError(
            f"no Kinetics annotation CSV (label,youtube_id,time_start,time_end,split) in {root} or {root / 'annotations'}; "
            "pass them with --annotations"
        )
    videos = _VideoIndex(root)
    result = AdapterResult(records=[])
    seen: set[str] = set()
    for csv_file in csv_files:
        for row in _read_csv_rows(csv_file, required=("youtube_id", "time_start", "time_end")):
            label = (row.get("label") or "").strip()
            if not label:
                result.skipped["no label (unlabelled test rows)"] += 1
                continue
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except ValueError:
                result.skipped["bad time_start/time_end"] += 1
                continue
            youtube_id = row["youtube_id"].strip()
            video_id = f"{youtube_id}_{start:06d}_{end:06d}"
            if video_id in seen:
                result.skipped["duplicate row"] += 1
                continue
            seen.add(video_id)
            split = _normalise_split(row.get("split") or csv_file.stem)
            path = videos.find(video_id) or videos.find(youtube_id)
            if path is None:
                result.missing.append(f"{split}\t{label}\t{video_id}")
                continue
            result.records.append(ClipRecord(video_id, path, label, split))
    return result


def ucf101_records(root: Path, split_index: int = 1) -> AdapterResult:
    """UCF-101 with its official train/test lists (``split_index`` 1, 2 or 3)."""
    _check_split_index(split_index)
    class_index = _find_file(
        root, "classInd.txt", "UCF-101's classInd.txt (from UCF101TrainTestSplits-RecognitionTask.zip)"
    )
    lists = class_index.parent
    classes = {}
    for line in _lines(class_index):
        number, name = line.split(maxsplit=1)
        classes[name.lower()] = name
    videos = _VideoIndex(root)
    result = AdapterResult(records=[])
    for split in ("train", "test"):
        list_file = lists / f"{split}list{split_index:02d}.txt"
        if not list_file.is_file():
            raise AvlabelError(f"UCF-101 split file {list_file} is missing; it ships next to classInd.txt")
        for line in _lines(list_file):
            relative = line.split()[0]
            folder, _, name = relative.replace("\\", "/").rpartition("/")
            # The lists spell some class folders differently from classInd (HandstandPushups).
            label = classes.get(folder.lower(), folder)
            _add(result, videos, Path(name).stem, name, label, split)
    return result


def hmdb51_records(root: Path, split_index: int = 1) -> AdapterResult:
    """HMDB51 with its official ``<class>_test_split<N>.txt`` files."""
    _check_split_index(split_index)
    suffix = f"_test_split{split_index}.txt"
    split_files = sorted(path for path in _walk_files(root) if path.name.endswith(suffix))
    if not split_files:
        raise AvlabelError(f"no HMDB51 split files (*{suffix}) under {root}; unpack test_train_splits.rar there")
    videos = _VideoIndex(root)
    result = AdapterResult(records=[])
    for split_file in split_files:
        label = split_file.name[: -len(suffix)]
        for line in _lines(split_file):
            name, _, code = line.partition(" ")
            split = {"1": "train", "2": "test"}.get(code.strip())
            if split is None:
                result.skipped[f"not used in split {split_index}"] += 1
                continue
            _add(result, videos, Path(name).stem, name, label, split)
    return result


def folder_records(root: Path) -> AdapterResult:
    """A folder per class (optionally inside train/val/test folders)."""
    top = sorted(entry for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if not top:
        raise AvlabelError(
            f"{root} has no class folders; expected root/<class>/<video> or root/<split>/<class>/<video>"
        )
    if all(entry.name.lower() in _SPLIT_NAMES for entry in top):
        class_dirs = [
            (_SPLIT_NAMES[split.name.lower()], entry)
            for split in top
            for entry in sorted(split.iterdir())
            if entry.is_dir()
        ]
    else:
        class_dirs = [("train", entry) for entry in top]
    result = AdapterResult(records=[])
    for split, class_dir in class_dirs:
        for path in sorted(_walk_files(class_dir)):
            if path.suffix.lower() in VIDEO_SUFFIXES:
                video_id = f"{class_dir.name}/{path.relative_to(class_dir).with_suffix('').as_posix()}"
                result.records.append(ClipRecord(video_id, path, class_dir.name, split))
            else:
                result.skipped["not a video file"] += 1
    if not result.records:
        raise AvlabelError(f"no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) under the class folders of {root}")
    return result


ADAPTERS: dict[str, Callable[..., AdapterResult]] = {
    "kinetics": kinetics_records,
    "ucf101": ucf101_records,
    "hmdb51": hmdb51_records,
    "folders": folder_records,
}


class _VideoIndex:
    """Every video file below a root, found by file name or stem (first one wins)."""

    def __init__(self, root: Path):
        self.by_name: dict[str, Path] = {}
        self.by_stem: dict[str, Path] = {}
        for path in sorted(_walk_files(root)):
            if path.suffix.lower() in VIDEO_SUFFIXES:
                self.by_name.setdefault(path.name, path)
                self.by_stem.setdefault(path.stem, path)

    def find(self, name_or_stem: str) -> Path | None:
        return self.by_name.get(name_or_stem) or self.by_stem.get(
            Path(name_or_stem).stem if "." in name_or_stem else name_or_stem
        )


def _add(result: AdapterResult, videos: _VideoIndex, video_id: str, name: str, label: str, split: str) -> None:
    path = videos.find(name)
    if path is None:
        result.missing.append(f"{split}\t{label}\t{name}")
    else:
        result.records.append(ClipRecord(video_id, path, label, split))


def _walk_files(root: Path):
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in files:
            yield Path(folder) / name


def _kinetics_csvs(root: Path) -> list[Path]:
    found = []
    for folder in (root / "annotations", root):
        for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
            with reading(f"annotation file {path}", _CSV_FIX), open(path, newline="", encoding="utf-8-sig") as handle:
                header = handle.readline()
            if "youtube_id" in header:
                found.append(path)
    return found


def _read_csv_rows(path: Path, required: tuple[str, ...]):
    with reading(f"annotation file {path}", _CSV_FIX), open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in required if column not in (reader.fieldnames or [])]
        if missing:
            raise AvlabelError(f"{path} lacks column(s) {', '.join(missing)}; is it a Kinetics annotation CSV?")
        yield from reader


def _normalise_split(name: str) -> str:
    return _SPLIT_NAMES.get(name.strip().lower(), name.strip().lower())


def _find_file(root: Path, name: str, what: str) -> Path:
    for path in _walk_files(root):
        if path.name == name:
            return path
    raise AvlabelError(f"{what} was not found under {root}; unpack it into the dataset folder")


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]


def _check_split_index(split_index: int) -> None:
    if split_index not in (1, 2, 3):
        raise AvlabelError(f"split index must be 1, 2 or 3 (the official splits), got {split_index}")
