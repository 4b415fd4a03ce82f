"""Optical flow: extraction (``avlabel flow``), uint8 storage, and fast random-access reading.

Flow ``i`` of a video is the displacement from frame ``i`` to frame ``i + 1`` (so ``n`` frames give
``n - 1`` flows), computed on grey frames scaled down to a short side of 256 px by OpenCV's DIS
(default), Farnebäck or TV-L1 (needs ``opencv-contrib-python-headless``), or by avlabel's
PyTorch TV-L1 (``tvl1-torch``, :mod:`avlabel.data.flow_torch`), which runs batches of frame
pairs on a GPU.

Storage follows the two-stream convention: displacements are clipped to ±20 px and quantised
to uint8 by ``q = round((clip(f, -20, 20) + 20) * 255 / 40)`` (0.157 px per step), the x and y
components stored separately. Two layouts, one reader:

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
``flow_sources.tsv``, the file each video's flow was computed from (:mod:`avlabel.data.sources`):
a folder is never read, or extended, for another dataset's videos under the same ids.
Extraction is resumable and kill -9 safe: each video is written to a hidden temporary sibling
and renamed when complete, finished videos are skipped on a rerun, stale temporaries are
removed, and failed videos are listed in ``flow_errors.log`` (and retried by the next run).
One run writes a folder at a time: the run holds ``.flow.lock`` and each worker process
``.flow_workers.lock`` (a shared lock), and a new run refuses a folder while either is held. On
Linux the workers are killed with their parent (``prctl(PR_SET_PDEATHSIG)``), elsewhere they
exit within a second of it, so a ``kill -9`` of the run leaves no process writing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from avlabel import __version__
from avlabel._checks import DEFAULT_WARN_FAILED_SHARE, check_failures, check_media_exist
from avlabel._io import atomic_write_json, atomic_write_text, file_lock
from avlabel.data.manifest import ClipRecord, Manifest
from avlabel.data.sources import append_sources, check_sources, source_lines
from avlabel.errors import AvlabelError, reading

FLOW_BOUND = 20.0  # pixels; quantisation range is [-FLOW_BOUND, FLOW_BOUND]
META_NAME = "flow_meta.json"
ERRORS_NAME = "flow_errors.log"
SOURCES_NAME = "flow_sources.tsv"
_LOCK_NAME = ".flow.lock"  # held by the run writing the folder
_WORKERS_LOCK_NAME = ".flow_workers.lock"  # held (shared) by each of its worker processes
FORMATS = ("jpg", "npz")
DIS_PRESETS = ("ultrafast", "fast", "medium")  # also tvl1-torch's presets
_JPEG_QUALITY = 95  # denseflow's (OpenCV's) default
_TMP_PREFIX = ".avlabel-tmp-"


# -- estimation ---------------------------------------------------------------------------------
# Each factory takes (preset, device) and returns an estimator (previous grey, current grey) -> flow;
# OpenCV's run on the CPU whatever the device.
def _dis(preset: str = "medium", device: str | None = None):
    import cv2

    presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}  # fmt: skip
    estimator = cv2.DISOpticalFlow_create(presets[preset])
    return lambda previous, current: estimator.calc(previous, current, None)


def _farneback(preset: str = "medium", device: str | None = None):
    import cv2

    # OpenCV's documented example parameters: 3 pyramid levels at scale 0.5, 15 px window.
    return lambda previous, current: cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def _tvl1(preset: str = "medium", device: str | None = None):
    import cv2

    if not hasattr(cv2, "optflow"):
        raise AvlabelError(
            "TV-L1 flow needs OpenCV's contrib build: pip uninstall opencv-python-headless && "
            "pip install opencv-contrib-python-headless (or use --method dis)"
        )
    estimator = cv2.optflow.DualTVL1OpticalFlow_create()
    return lambda previous, current: estimator.calc(previous, current, None)


def _tvl1_torch(preset: str = "medium", device: str | None = None):
    from avlabel.data.flow_torch import PRESETS, TVL1Flow

    return TVL1Flow(PRESETS[preset], device=device)  # batched: also takes (N, H, W) stacks of pairs


METHODS: dict[str, Callable[[str, str | None], Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "dis": _dis,
    "farneback": _farneback,
    "tvl1": _tvl1,
    "tvl1-torch": _tvl1_torch,
}


def flow_estimator(method: str = "dis", preset: str = "medium", device: str | None = None) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function ``(previous_grey, current_grey) -> (H, W, 2) float32`` pixel displacements.

    ``device`` places ``tvl1-torch`` (default: CUDA when available); the OpenCV methods ignore it.
    An estimator with a ``batch_pairs`` attribute also takes ``(N, H, W)`` stacks (see :func:`estimate_pairs`).
    """
    if method not in METHODS:
        raise AvlabelError(f"unknown flow method {method!r}; choose one of {', '.join(METHODS)}")
    if preset not in DIS_PRESETS:
        raise AvlabelError(f"unknown DIS preset {preset!r}; choose one of {', '.join(DIS_PRESETS)}")
    return METHODS[method](preset, device)


def estimate_pairs(estimate: Callable[[np.ndarray, np.ndarray], np.ndarray], previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` grey pairs -> ``(N, H, W, 2)`` flow: one call for a batched estimator, else one per pair."""
    if hasattr(estimate, "batch_pairs"):
        return estimate(previous, current)
    return np.stack([estimate(a, b) for a, b in zip(previous, current, strict=True)])


def to_grey(frames: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 RGB -> ``(N, H, W)`` uint8 luma (BT.601 weights, as OpenCV)."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.round(frames.astype(np.float32) @ weights).astype(np.uint8)


def quantize(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Pixel displacements -> uint8 with ``round((clip(f, -b, b) + b) * 255 / 2b)``."""
    return np.round((np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound))).astype(np.uint8)


def dequantize(values: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """uint8 -> pixel displacements (float32), the inverse of :func:`quantize` up to one step."""
    return values.astype(np.float32) * np.float32(2 * bound / 255.0) - np.float32(bound)


# -- storage ------------------------------------------------------------------------------------
class _JpgWriter:
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


class _NpzWriter:
    """Writes one deflated ``NNNNN.npy`` member per flow frame (what ``np.savez_compressed`` does)."""

    def __init__(self, path: Path):
        self.archive, self.count = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED), 0

    def add(self, field_uint8: np.ndarray) -> None:
        with self.archive.open(f"{self.count:05d}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, field_uint8)
        self.count += 1

    def close(self) -> None:
        self.archive.close()


_WRITERS = {"jpg": _JpgWriter, "npz": _NpzWriter}


def _output_path(root: Path, video_id: str, format: str) -> Path:
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
            raise AvlabelError(f"flow folder not found: {self.root}; compute it with `avlabel flow --manifest M --out DIR`")
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
                self._lengths[record.video_id] = sum(1 for name in os.listdir(location) if name.startswith("x_") and name.endswith(".jpg"))
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
                planes = [cv2.imread(str(location / f"{axis}_{index + 1:05d}.jpg"), cv2.IMREAD_GRAYSCALE) for axis in "xy"]
                if any(plane is None for plane in planes):
                    raise AvlabelError(f"flow frame {index + 1} of {record.video_id} in {location} is unreadable; rerun `avlabel flow`")
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
        failed = set(_read_errors(self.root / ERRORS_NAME))
        missing = [record.video_id for record in records if record.video_id not in failed and self.locate(record) is None]
        if missing:
            source = self.meta.get("manifest") or ("a denseflow run" if self.is_denseflow else "another manifest")
            raise AvlabelError(
                f"flow folder {self.root} lacks flow for {len(missing)} of {len(records)} videos "
                f"(e.g. {', '.join(missing[:3])}); it was computed for {source} — run "
                f"`avlabel flow --manifest <this manifest> --out {self.root}` (it computes only what is missing)"
            )
        if not self.is_denseflow:
            present = [record for record in records if record.video_id not in failed]
            check_sources(self.root / SOURCES_NAME, present, manifest, store=f"flow folder {self.root}", bounds=False,
                          fix=f"compute flow for it into another folder (avlabel flow --manifest {manifest or 'M'} --out DIR) and use that")  # fmt: skip

    def _require(self, record: ClipRecord) -> Path:
        location = self.locate(record)
        if location is None:
            raise AvlabelError(f"no flow for {record.video_id} in {self.root}; run `avlabel flow` for this manifest")
        return location

    def _find(self, record: ClipRecord) -> Path | None:
        direct = _output_path(self.root, record.video_id, self.format)
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


# -- extraction ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlowConfig:
    """Everything that determines the flow values; stored in ``flow_meta.json``."""

    method: str = "dis"
    preset: str = "medium"  # DIS or tvl1-torch preset; ignored by the other methods
    short_side: int = 256  # larger frames are scaled down to this short side first
    bound: float = FLOW_BOUND
    format: str = "jpg"

    def __post_init__(self):
        if self.method not in METHODS:
            raise AvlabelError(f"unknown flow method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.preset not in DIS_PRESETS:
            raise AvlabelError(f"unknown DIS preset {self.preset!r}; choose one of {', '.join(DIS_PRESETS)}")
        if self.format not in FORMATS:
            raise AvlabelError(f"unknown flow format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.short_side < 16:
            raise AvlabelError(f"--short-side must be at least 16 pixels, got {self.short_side}")


def iter_video_flow(path: str | os.PathLike[str], config: FlowConfig, device: str | None = None) -> Iterator[np.ndarray]:
    """Yield the quantised flow of a video frame pair by pair: ``(H, W, 2)`` uint8 each.

    Streaming keeps memory flat for long videos (a 10-minute video has 18,000 flow frames); a
    batched estimator (``tvl1-torch``) gets the pairs ``batch_pairs`` at a time, on ``device``.
    """
    from avlabel.data.decode import VideoReader

    estimate = flow_estimator(config.method, config.preset, device)
    with VideoReader(path, short_side=config.short_side, threads=1) as reader:
        greys = (to_grey(frame[None])[0] for frame in reader.iter_frames())
        for previous, current in _frame_pairs(greys, getattr(estimate, "batch_pairs", 1)):
            yield from quantize(estimate_pairs(estimate, previous, current), config.bound)


def _frame_pairs(frames: Iterable[np.ndarray], batch_pairs: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Consecutive frames as ``(previous, current)`` stacks of up to ``batch_pairs`` pairs each."""
    window: list[np.ndarray] = []  # the last frame of the previous stack, then the new ones
    for frame in frames:
        window.append(frame)
        if len(window) == batch_pairs + 1:
            yield np.stack(window[:-1]), np.stack(window[1:])
            window = window[-1:]
    if len(window) > 1:
        yield np.stack(window[:-1]), np.stack(window[1:])


def compute_video_flow(path: str | os.PathLike[str], config: FlowConfig) -> np.ndarray:
    """Quantised flow of a whole (short) video in memory: ``(frames - 1, H, W, 2)`` uint8."""
    fields = list(iter_video_flow(path, config))
    if not fields:
        raise AvlabelError(f"{path} has a single frame; optical flow needs at least two")
    return np.stack(fields)


def flow_between(first: np.ndarray, second: np.ndarray, method: str = "dis", preset: str = "medium",
                 bound: float = FLOW_BOUND) -> np.ndarray:  # fmt: skip
    """On-the-fly flow from ``first[i]`` to ``second[i]`` (both ``(N, H, W, 3)`` uint8).

    Returns:
        ``(N, H, W, 2)`` float32 pixels, quantised and dequantised like stored flow so a model
        sees the same values either way.
    """
    fields = estimate_pairs(flow_estimator(method, preset), to_grey(first), to_grey(second))
    return dequantize(quantize(fields, bound), bound)


@dataclass
class FlowRunSummary:
    """What a flow run did."""

    total: int
    computed: int = 0
    skipped: int = 0  # already finished by an earlier run
    failed: list[tuple[str, str]] = field(default_factory=list)  # (video_id, error)
    seconds: float = 0.0
    flow_frames: int = 0


def run_flow(
    manifest: Manifest,
    out: str | os.PathLike[str],
    config: FlowConfig,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    warn_failed_share: float = DEFAULT_WARN_FAILED_SHARE,
    device: str | None = None,
) -> FlowRunSummary:
    """Compute and store flow for every video of ``manifest`` into ``out`` (resumable).

    Args:
        manifest: the videos.
        out: the flow folder (created; reusing one computed with other settings, or for other
            files under the same video ids, is refused).
        config: method, size, format.
        workers: processes; each runs single-threaded OpenCV/FFmpeg (0 or 1: this process).
        progress: called as ``progress(done, total)`` after each video.
        warn_failed_share: warn (:class:`~avlabel.errors.AvlabelWarning`) when more than this
            share of the videos failed.
        device: where ``tvl1-torch`` runs (default: CUDA when available; every worker uses it).

    Raises:
        AvlabelError: bad settings or folder, another run writing it, or every video failing
            (a folder this run created is then removed again).
    """
    out = Path(out)
    records = list({record.video_id: record for record in manifest}.values())
    if not any(_output_path(out, record.video_id, config.format).exists() for record in records):
        check_media_exist(records, manifest.path)  # all would fail: say so before creating anything
    _check_output(out, config)  # before the lock files: a folder of other things is left as it was
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive_writer(out):
        summary = _extract(manifest, records, out, config, workers, progress, device)
    if created and summary.computed == 0 and len(summary.failed) == summary.total:
        shutil.rmtree(out, ignore_errors=True)  # nothing but an error log: not worth leaving behind
    check_failures(summary.failed, summary.total, what="videos", listed_in=out / ERRORS_NAME, warn_share=warn_failed_share)
    return summary


def _extract(manifest: Manifest, records: list[ClipRecord], out: Path, config: FlowConfig, workers: int,
             progress: Callable[[int, int], None] | None, device: str | None) -> FlowRunSummary:  # fmt: skip
    """The run itself, inside the folder's lock."""
    summary = FlowRunSummary(total=len(records))
    todo, finished = [], []
    for record in records:
        (finished if _output_path(out, record.video_id, config.format).exists() else todo).append(record)
    check_sources(out / SOURCES_NAME, finished, manifest.path, store=f"flow folder {out}", bounds=False,
                  fix="use another --out for this manifest")  # fmt: skip
    atomic_write_json(out / META_NAME, {**asdict(config), "manifest": str(manifest.path) if manifest.path else None,
                                        "manifest_sha256": manifest.sha256, "avlabel_version": __version__})  # fmt: skip
    summary.skipped = len(finished)
    _remove_leftovers({_output_path(out, record.video_id, config.format).parent for record in todo})
    started = time.perf_counter()
    done = summary.skipped
    if progress:
        progress(done, summary.total)
    origin = str(manifest.path) if manifest.path else None
    for video_id, result in _map_videos(todo, out, config, workers, origin, device):
        if isinstance(result, str):
            summary.failed.append((video_id, result))
        else:
            summary.computed += 1
            summary.flow_frames += result
        done += 1
        if progress:
            progress(done, summary.total)
    summary.seconds = time.perf_counter() - started
    atomic_write_text(out / ERRORS_NAME, "".join(f"{video_id}\t{error}\n" for video_id, error in summary.failed))
    return summary


@contextlib.contextmanager
def _exclusive_writer(out: Path) -> Iterator[None]:
    """Hold ``out`` for this run; refuse it while another run, or a worker of one, is alive."""
    busy = f"another `avlabel flow` is writing {out} (or worker processes of one are still running); wait for it to finish"
    lock = file_lock(out / _LOCK_NAME, busy=busy)
    try:
        file_lock(out / _WORKERS_LOCK_NAME, busy=busy).close()  # no worker of an earlier run is still writing
        yield
    finally:
        lock.close()


def _check_output(out: Path, config: FlowConfig) -> None:
    """``out`` is new, or a flow folder computed with exactly ``config``."""
    if not out.is_dir():
        return
    meta_path = out / META_NAME
    settings = asdict(config)
    if meta_path.is_file():
        with reading(f"flow folder metadata {meta_path}", "use another --out"):
            existing = json.loads(meta_path.read_text(encoding="utf-8"))
        different = {key: (existing.get(key), value) for key, value in settings.items() if existing.get(key) != value}
        if different:
            described = ", ".join(f"{key} {old!r} (asked {new!r})" for key, (old, new) in different.items())
            raise AvlabelError(f"{out} holds flow computed with {described}; use another --out or the same options")
    elif any(not entry.name.startswith((_TMP_PREFIX, _LOCK_NAME, _WORKERS_LOCK_NAME)) for entry in out.iterdir()):
        raise AvlabelError(f"{out} is not empty and is not an avlabel flow folder; choose an empty or new --out")


def _remove_leftovers(folders: Iterable[Path]) -> None:
    """Delete hidden temporaries a killed run left next to the outputs it never renamed into place."""
    for folder in folders:
        if folder.is_dir():
            for entry in os.scandir(folder):
                if entry.name.startswith(_TMP_PREFIX):
                    shutil.rmtree(entry.path) if entry.is_dir() else os.unlink(entry.path)


def _map_videos(records: list[ClipRecord], out: Path, config: FlowConfig, workers: int, manifest: str | None, device: str | None):
    """Yield ``(video_id, flow frames written | error message)`` as videos finish."""
    if workers <= 1 or len(records) <= 1:
        for record in records:
            yield record.video_id, _flow_task(record, out, config, manifest, device)
        return
    # spawn: the parent runs a progress thread, and forking a threaded process is unsafe.
    initargs = (os.getpid(), str(out / _WORKERS_LOCK_NAME))
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=initargs) as pool:  # fmt: skip
        pending = {}
        queue = iter(records)
        for record in queue:
            pending[pool.submit(_flow_task, record, out, config, manifest, device)] = record.video_id
            if len(pending) >= 2 * workers:
                break
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield pending.pop(future), future.result()
                record = next(queue, None)
                if record is not None:
                    pending[pool.submit(_flow_task, record, out, config, manifest, device)] = record.video_id


_worker_lock = None  # the worker's shared lock on the folder, held until the process ends


def _init_worker(parent: int, workers_lock: str) -> None:
    import cv2

    global _worker_lock
    cv2.setNumThreads(1)  # one process per core already
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the same for torch (tvl1-torch), read when it is first imported
    _die_with_parent(parent)
    _worker_lock = file_lock(workers_lock, shared=True)  # a rerun sees a live writer until this process is gone


def _die_with_parent(parent: int) -> None:
    """End this worker when the run that started it ends, however it ends (kill -9 included).

    Linux: the kernel sends SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``); other
    systems: a thread checks every second whether the parent is still there. Either way a
    parent that died before this ran is noticed at once.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    else:

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True, name="avlabel-parent-watch").start()
    if os.getppid() != parent:
        os._exit(1)


def _flow_task(record: ClipRecord, out: Path, config: FlowConfig, manifest: str | None = None, device: str | None = None) -> int | str:
    """Compute and atomically store one video's flow; return flow frames written or the error text."""
    target = _output_path(out, record.video_id, config.format)
    # A hidden sibling renamed into place when complete: a killed run leaves only temporaries,
    # which the next run deletes (_remove_leftovers), never a half-written video.
    tmp = target.with_name(f"{_TMP_PREFIX}{os.getpid()}-{target.name}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        writer = _WRITERS[config.format](tmp)
        try:
            for field_uint8 in iter_video_flow(record.path, config, device):
                writer.add(field_uint8)
        finally:
            writer.close()
        if writer.count == 0:
            raise AvlabelError(f"{record.path} has a single frame; optical flow needs at least two")
        append_sources(out / SOURCES_NAME, source_lines([record], manifest))  # durable before the flow is visible
        os.replace(tmp, target)
        return writer.count
    except Exception as error:  # noqa: BLE001 - a long job records the failure and goes on
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        return str(error) if isinstance(error, AvlabelError) else f"{type(error).__name__}: {error}"


def _read_errors(path: Path) -> list[str]:
    if not path.is_file():
        return []
    with reading(f"flow error log {path}", "delete it and rerun `avlabel flow`"):
        return [line.split("\t", 1)[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
