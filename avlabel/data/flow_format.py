"""Optical flow's storage format: uint8 quantisation, the two folder layouts, and fast random-access reading.

Storage follows the two-stream convention: displacements are clipped to ±20 px and quantised
to uint8 by ``q = round((clip(f, -20, 20) + 20) * 255 / 40)`` (0.157 px per step), the x and y
components stored separately. Two layouts, one reader (`FlowStore`):

- ``jpg`` (default): ``DIR/<video_id>/x_00001.jpg`` and ``y_00001.jpg`` — exactly mmaction2's
  *denseflow* layout, so flow users already extracted for Kinetics is read as is (set no meta
  file, bound 20) and ours is usable by mmaction2. Reading 8 pairs opens 16 small files.
- ``npz``: ``DIR/<video_id>.npz``, one deflate-compressed member per flow frame (lossless;
  members are decompressed individually, so a clip still reads only its 8 frames).

Measured (``benchmarks/bench_data.py``, 10 s 340x256 video with camera pan and moving objects):
JPEG pairs take 5.8 KB per frame pair against 10.4 KB for deflate (2.0 vs 3.3 KB on the
synthetic benchmark), read a clip's 8 frames faster (4.0 vs 5.8 ms), and differ from the
lossless values by 0.003 px on average (99th percentile 0.16 px, one quantisation step) — far
below DIS's own error. Hence ``jpg`` is the default; ``npz`` is there for bit-exact needs.

A flow folder carries ``flow_meta.json`` (method, bound, size, format, source manifest) and
``flow_sources.tsv``, the file each video's flow was computed from (`avlabel.data.sources`):
a folder is never read for another dataset's videos under the same ids. Videos whose
extraction failed are listed in ``flow_errors.log``. Folders are written by
`avlabel.data.flow_extract`; while the shards of a split have not all finished, their own
source records and error logs (``.flow_shards/``) are read together with the folder's, so a
folder is as usable between shards as it is between runs.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from avlabel._shard_folder import staged_files
from avlabel.data.manifest import ClipRecord
from avlabel.data.sources import check_sources
from avlabel.errors import AvlabelError, reading

FLOW_BOUND = 20.0  # pixels; quantisation range is [-FLOW_BOUND, FLOW_BOUND]
STORE = "flow"  # the name of a flow folder's lock and staging files (avlabel._shard_folder)
META_NAME = "flow_meta.json"
ERRORS_NAME = "flow_errors.log"
SOURCES_NAME = "flow_sources.tsv"
FORMATS = ("jpg", "npz")
_JPEG_QUALITY = 95  # denseflow's (OpenCV's) default


def quantize(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Pixel displacements -> uint8 with ``round((clip(f, -b, b) + b) * 255 / 2b)``."""
    return np.round((np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound))).astype(np.uint8)


def dequantize(values: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """uint8 -> pixel displacements (float32), the inverse of `quantize` up to one step."""
    return values.astype(np.float32) * np.float32(2 * bound / 255.0) - np.float32(bound)


class JpgWriter:
    """Writes ``x_00001.jpg``/``y_00001.jpg`` ... into a folder, one flow frame at a time."""

    def __init__(self, path: Path):
        path.mkdir(parents=True)
        self.path, self.count = path, 0

    def add(self, field_uint8: np.ndarray) -> None:
        import cv2

        self.count += 1
        for channel, axis in enumerate("xy"):
            target = str(self.path / f"{axis}_{self.count:05d}.jpg")
            if not cv2.imwrite(target, field_uint8[..., channel], [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]):
                raise OSError(f"could not write {target}")

    def close(self) -> None:
        pass


class NpzWriter:
    """Writes one deflated ``NNNNN.npy`` member per flow frame (what ``np.savez_compressed`` does)."""

    def __init__(self, path: Path):
        self.archive, self.count = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED), 0

    def add(self, field_uint8: np.ndarray) -> None:
        with self.archive.open(f"{self.count:05d}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, field_uint8)
        self.count += 1

    def close(self) -> None:
        self.archive.close()


WRITERS = {"jpg": JpgWriter, "npz": NpzWriter}


def output_path(root: Path, video_id: str, format: str) -> Path:
    return root / (f"{video_id}.npz" if format == "npz" else video_id)


class FlowStore:
    """Read-only access to a flow folder: ours (``flow_meta.json``) or mmaction2 denseflow output.

    For denseflow folders (no meta file) a video's frames are looked for in ``DIR/<video_id>``,
    ``DIR/<label>/<video_id>`` (label with spaces or underscores) and otherwise by folder name
    anywhere up to three levels down.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        if not self.root.is_dir():
            raise AvlabelError(
                f"flow folder not found: {self.root}; compute it with `avlabel flow --manifest M --out DIR`"
            )
        meta_path = self.root / META_NAME
        if meta_path.is_file():
            with reading(f"flow folder metadata {meta_path}", "recompute the folder with `avlabel flow`"):
                self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
            self.format = self.meta["format"]
        else:
            self.meta = {"format": "jpg", "bound": FLOW_BOUND, "layout": "denseflow"}
            self.format = "jpg"
        self.bound = float(self.meta.get("bound", FLOW_BOUND))
        self._by_name: dict[str, Path] | None = None
        self._located: dict[str, Path | None] = {}
        self._lengths: dict[str, int] = {}

    @property
    def is_denseflow(self) -> bool:
        return self.meta.get("layout") == "denseflow"

    def locate(self, record: ClipRecord) -> Path | None:
        """The file or folder holding ``record``'s flow, or None."""
        if record.video_id not in self._located:
            self._located[record.video_id] = self._find(record)
        return self._located[record.video_id]

    def num_flows(self, record: ClipRecord) -> int:
        """Number of flow frames stored for ``record`` (frames - 1)."""
        if record.video_id not in self._lengths:
            location = self._require(record)
            if self.format == "npz":
                with np.load(location) as archive:
                    self._lengths[record.video_id] = len(archive.files)
            else:
                self._lengths[record.video_id] = sum(
                    1 for name in os.listdir(location) if name.startswith("x_") and name.endswith(".jpg")
                )
        return self._lengths[record.video_id]

    def read(self, record: ClipRecord, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Flow frames ``indices`` (clamped to the stored range) as ``(N, H, W, 2)`` float32 pixels."""
        import cv2

        location = self._require(record)
        last = self.num_flows(record) - 1
        if last < 0:
            raise AvlabelError(f"flow for {record.video_id} in {location} is empty; delete it and rerun `avlabel flow`")
        indices = np.clip(np.asarray(indices, dtype=np.int64), 0, last)
        unique = np.unique(indices)
        fields = {}
        if self.format == "npz":
            with np.load(location) as archive:
                for index in unique:
                    fields[index] = archive[f"{index:05d}"]
        else:
            for index in unique:
                planes = [
                    cv2.imread(str(location / f"{axis}_{index + 1:05d}.jpg"), cv2.IMREAD_GRAYSCALE) for axis in "xy"
                ]
                if any(plane is None for plane in planes):
                    raise AvlabelError(
                        f"flow frame {index + 1} of {record.video_id} in {location} is unreadable; rerun `avlabel flow`"
                    )
                fields[index] = np.stack(planes, axis=-1)
        return dequantize(np.stack([fields[index] for index in indices]), self.bound)

    def check_covers(self, records: Iterable[ClipRecord], manifest: str | os.PathLike[str] | None = None) -> None:
        """Raise if the folder lacks flow for videos of ``records``, or holds another file's flow under their ids.

        Videos that failed during extraction (listed in ``flow_errors.log``) are not counted as
        missing: the dataset skips them as corrupt items. ``manifest`` (where ``records`` come
        from) is named in the messages. Folders from mmaction2's denseflow record no sources and
        are not checked for them.
        """
        records = list(records)
        failed = failed_videos(self.root)
        missing = [
            record.video_id for record in records if record.video_id not in failed and self.locate(record) is None
        ]
        if missing:
            source = self.meta.get("manifest") or ("a denseflow run" if self.is_denseflow else "another manifest")
            raise AvlabelError(
                f"flow folder {self.root} lacks flow for {len(missing)} of {len(records)} videos "
                f"(e.g. {', '.join(missing[:3])}); it was computed for {source} — run "
                f"`avlabel flow --manifest <this manifest> --out {self.root}` (it computes only what is missing)"
            )
        if not self.is_denseflow:
            present = [record for record in records if record.video_id not in failed]
            check_sources(
                source_files(self.root),
                present,
                manifest,
                store=f"flow folder {self.root}",
                bounds=False,
                fix=f"compute flow for it into another folder (avlabel flow --manifest {manifest or 'M'} --out DIR) and use that",
            )

    def _require(self, record: ClipRecord) -> Path:
        location = self.locate(record)
        if location is None:
            raise AvlabelError(f"no flow for {record.video_id} in {self.root}; run `avlabel flow` for this manifest")
        return location

    def _find(self, record: ClipRecord) -> Path | None:
        direct = output_path(self.root, record.video_id, self.format)
        if direct.exists():
            return direct
        if not self.is_denseflow:
            return None
        for label in {record.label, record.label.replace(" ", "_")}:
            candidate = self.root / label / record.video_id
            if candidate.is_dir():
                return candidate
        if self._by_name is None:
            self._by_name = {}
            for folder, subfolders, _ in _walk_depth(self.root, depth=3):
                for name in subfolders:
                    self._by_name.setdefault(name, Path(folder) / name)
        return self._by_name.get(Path(record.video_id).name)


def _walk_depth(root: Path, depth: int):
    base = len(root.parts)
    for folder, subfolders, files in os.walk(root):
        if len(Path(folder).parts) - base >= depth:
            subfolders[:] = []
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        yield folder, subfolders, files


def source_files(root: Path) -> list[Path]:
    """The files recording each video's source: the folder's own, then those of shards not merged yet."""
    return [root / SOURCES_NAME, *staged_files(root, STORE, SOURCES_NAME)]


def failed_videos(root: Path) -> set[str]:
    """Videos whose extraction failed in the last run (of each shard not merged yet)."""
    logs = [root / ERRORS_NAME, *staged_files(root, STORE, ERRORS_NAME)]
    return {video_id for path in logs for video_id, _ in read_errors(path)}


def read_errors(path: Path) -> list[tuple[str, str]]:
    """``(video_id, reason)`` of every line of a flow error log (none without the file)."""
    if not path.is_file():
        return []
    with reading(f"flow error log {path}", "delete it and rerun `avlabel flow`"):
        lines = path.read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t", 1)) if "\t" in line else (line, "") for line in lines if line.strip()]
