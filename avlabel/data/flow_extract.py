"""``avlabel flow``: the job that computes and stores optical flow for every video of a manifest.

Frames are scaled down to a short side of 256 px, turned grey and streamed pair by pair through
an estimator (`avlabel.data.flow_estimators`) into a flow folder
(`avlabel.data.flow_format`). Extraction is resumable and kill -9 safe: each video is
written to a hidden temporary sibling and renamed when complete, finished videos are skipped on
a rerun, stale temporaries are removed, and failed videos are listed in ``flow_errors.log`` (and
retried by the next run); a folder is never extended with another dataset's videos under the
same ids. One run writes a folder at a time: the run holds ``.flow.lock`` and each worker process
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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from avlabel import __version__
from avlabel._checks import DEFAULT_WARN_FAILED_SHARE, check_failures, check_media_exist
from avlabel._io import atomic_write_json, atomic_write_text, file_lock
from avlabel.data.flow_estimators import DIS_PRESETS, METHODS, estimate_pairs, flow_estimator, to_grey
from avlabel.data.flow_format import (
    ERRORS_NAME,
    FLOW_BOUND,
    FORMATS,
    META_NAME,
    SOURCES_NAME,
    WRITERS,
    output_path,
    quantize,
)
from avlabel.data.manifest import ClipRecord, Manifest
from avlabel.data.sources import append_sources, check_sources, source_lines
from avlabel.errors import AvlabelError, reading

_LOCK_NAME = ".flow.lock"  # held by the run writing the folder
_WORKERS_LOCK_NAME = ".flow_workers.lock"  # held (shared) by each of its worker processes
_TMP_PREFIX = ".avlabel-tmp-"


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


def iter_video_flow(
    path: str | os.PathLike[str], config: FlowConfig, device: str | None = None
) -> Iterator[np.ndarray]:
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
        warn_failed_share: warn (`AvlabelWarning`) when more than this
            share of the videos failed.
        device: where ``tvl1-torch`` runs (default: CUDA when available; every worker uses it).

    Raises:
        AvlabelError: bad settings or folder, another run writing it, or every video failing
            (a folder this run created is then removed again).
    """
    out = Path(out)
    records = list({record.video_id: record for record in manifest}.values())
    if not any(output_path(out, record.video_id, config.format).exists() for record in records):
        check_media_exist(records, manifest.path)  # all would fail: say so before creating anything
    _check_output(out, config)  # before the lock files: a folder of other things is left as it was
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive_writer(out):
        summary = _extract(manifest, records, out, config, workers, progress, device)
    if created and summary.computed == 0 and len(summary.failed) == summary.total:
        shutil.rmtree(out, ignore_errors=True)  # nothing but an error log: not worth leaving behind
    check_failures(
        summary.failed, summary.total, what="videos", listed_in=out / ERRORS_NAME, warn_share=warn_failed_share
    )
    return summary


def _extract(
    manifest: Manifest,
    records: list[ClipRecord],
    out: Path,
    config: FlowConfig,
    workers: int,
    progress: Callable[[int, int], None] | None,
    device: str | None,
) -> FlowRunSummary:
    """The run itself, inside the folder's lock."""
    summary = FlowRunSummary(total=len(records))
    todo, finished = [], []
    for record in records:
        (finished if output_path(out, record.video_id, config.format).exists() else todo).append(record)
    check_sources(
        out / SOURCES_NAME,
        finished,
        manifest.path,
        store=f"flow folder {out}",
        bounds=False,
        fix="use another --out for this manifest",
    )
    atomic_write_json(
        out / META_NAME,
        {
            **asdict(config),
            "manifest": str(manifest.path) if manifest.path else None,
            "manifest_sha256": manifest.sha256,
            "avlabel_version": __version__,
        },
    )
    summary.skipped = len(finished)
    _remove_leftovers({output_path(out, record.video_id, config.format).parent for record in todo})
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
    busy = (
        f"another `avlabel flow` is writing {out} (or worker processes of one are still running); wait for it to finish"
    )
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


def _map_videos(
    records: list[ClipRecord], out: Path, config: FlowConfig, workers: int, manifest: str | None, device: str | None
):
    """Yield ``(video_id, flow frames written | error message)`` as videos finish."""
    if workers <= 1 or len(records) <= 1:
        for record in records:
            yield record.video_id, _flow_task(record, out, config, manifest, device)
        return
    # spawn: the parent runs a progress thread, and forking a threaded process is unsafe.
    initargs = (os.getpid(), str(out / _WORKERS_LOCK_NAME))
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=initargs
    ) as pool:
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


def _flow_task(
    record: ClipRecord, out: Path, config: FlowConfig, manifest: str | None = None, device: str | None = None
) -> int | str:
    """Compute and atomically store one video's flow; return flow frames written or the error text."""
    target = output_path(out, record.video_id, config.format)
    # A hidden sibling renamed into place when complete: a killed run leaves only temporaries,
    # which the next run deletes (_remove_leftovers), never a half-written video.
    tmp = target.with_name(f"{_TMP_PREFIX}{os.getpid()}-{target.name}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        writer = WRITERS[config.format](tmp)
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
