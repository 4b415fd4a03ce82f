"""``avlabel flow``: the job that computes and stores optical flow for every video of a manifest.

Frames are scaled down to a short side of 256 px, turned grey and streamed pair by pair through
an estimator (`avlabel.data.flow_estimators`) into a flow folder
(`avlabel.data.flow_format`). Extraction is resumable and kill -9 safe: each video is
written to a hidden temporary sibling and renamed when complete, finished videos are skipped on
a rerun, stale temporaries are removed, and failed videos are listed in ``flow_errors.log`` (and
retried by the next run); a folder is never extended with another dataset's videos under the
same ids.

Shards. A run computes one shard of the manifest (`avlabel._sharding`; the whole manifest is
shard 0/1), and the shards of a split run at the same time into one folder
(`avlabel._shard_folder`): each video's flow goes straight to its place, while the folder's
shared files are kept per shard (``.flow_shards/I-of-N/``: the source records, appended as
videos finish, and the error log) until the last shard to finish merges them into
``flow_sources.tsv`` (one line per video, in id order) and ``flow_errors.log`` (the videos
whose last attempt failed, with the reason, in id order).
So a finished split leaves exactly the folder one run of the whole manifest leaves, whatever the
number of shards or workers and the order they finished in. A shard holds its lock
(``.flow_shards/I-of-N.lock``) and each of its worker processes a shared lock
(``.flow_shards/I-of-N.workers.lock``); a run of the same shard is refused while either is
held. On Linux the workers are killed with their parent (``prctl(PR_SET_PDEATHSIG)``), elsewhere
they exit within a second of it, so a ``kill -9`` of the run leaves no process writing.
"""

from __future__ import annotations

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
from avlabel._shard_folder import ShardRun, folder_shard
from avlabel._sharding import WHOLE, Shard
from avlabel.data.flow_estimators import DIS_PRESETS, METHODS, estimate_pairs, flow_estimator, to_grey
from avlabel.data.flow_format import (
    ERRORS_NAME,
    FLOW_BOUND,
    FORMATS,
    META_NAME,
    SOURCES_NAME,
    STORE,
    WRITERS,
    output_path,
    quantize,
    read_errors,
    source_files,
)
from avlabel.data.manifest import ClipRecord, Manifest
from avlabel.data.sources import append_sources, check_sources, read_sources, recorded_lines, source_lines
from avlabel.errors import AvlabelError, reading

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

    total: int  # videos of its shard
    computed: int = 0
    skipped: int = 0  # already finished by an earlier run
    failed: list[tuple[str, str]] = field(default_factory=list)  # (video_id, error)
    seconds: float = 0.0
    flow_frames: int = 0
    shard: Shard = WHOLE
    waiting: list[Shard] = field(default_factory=list)  # shards of the split still to finish (empty: merged)


def run_flow(
    manifest: Manifest,
    out: str | os.PathLike[str],
    config: FlowConfig,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    warn_failed_share: float = DEFAULT_WARN_FAILED_SHARE,
    device: str | None = None,
    shard: Shard = WHOLE,
) -> FlowRunSummary:
    """Compute and store flow for the videos of ``manifest`` in ``shard`` into ``out`` (resumable).

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
        shard: the share of the manifest to compute (default: all of it); the last shard of a
            split to finish merges the folder's shared files.

    Raises:
        AvlabelError: bad settings or folder, a run of the same shard (or of another split)
            writing it, shards of the split that ran with another manifest, or every video failing
            (a folder this run created is then removed again).
    """
    out = Path(out)
    every = list({record.video_id: record for record in manifest}.values())
    records = shard.select(every)
    if not any(output_path(out, record.video_id, config.format).exists() for record in records):
        check_media_exist(records, manifest.path)  # all would fail: say so before creating anything
    _check_output(out, config)  # before the lock files: a folder of other things is left as it was
    # This shard's videos in place and those of the shards running beside it, before anything is
    # computed to add to them (what the folder held before was checked when it was computed).
    staged = read_sources(source_files(out)[1:]) or {}
    _check_sources(out, source_files(out), [*records, *(r for r in every if r.video_id in staged)], manifest, config)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    settings = {**asdict(config), "manifest_sha256": manifest.sha256}

    def merge(split: list[Path], abandoned: list[Path]) -> None:
        # shards that started side by side meet only now
        files = [folder / SOURCES_NAME for folder in split]
        recorded = read_sources(files) or {}
        _check_sources(out, files, [record for record in every if record.video_id in recorded], manifest, config)
        _merge(out, config, split, abandoned)

    with ShardRun(out, STORE, shard, "avlabel flow", settings) as run:
        summary = _extract(manifest, records, out, config, workers, progress, device, run)
        summary.waiting = run.finish(merge)
    if created and shard.whole and summary.computed == 0 and len(summary.failed) == summary.total:
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
    run: ShardRun,
) -> FlowRunSummary:
    """The run itself, inside its shard's lock."""
    summary = FlowRunSummary(total=len(records), shard=run.shard)
    todo = [record for record in records if not output_path(out, record.video_id, config.format).exists()]
    atomic_write_json(
        out / META_NAME,
        {
            **asdict(config),
            "manifest": str(manifest.path) if manifest.path else None,
            "manifest_sha256": manifest.sha256,
            "avlabel_version": __version__,
        },
    )
    summary.skipped = len(records) - len(todo)
    _remove_leftovers(
        out, [output_path(out, record.video_id, config.format) for record in todo], run.shard, config.format
    )
    started = time.perf_counter()
    done = summary.skipped
    if progress:
        progress(done, summary.total)
    origin = str(manifest.path) if manifest.path else None
    for video_id, result in _map_videos(todo, out, config, workers, origin, device, run):
        if isinstance(result, str):
            summary.failed.append((video_id, result))
        else:
            summary.computed += 1
            summary.flow_frames += result
        done += 1
        if progress:
            progress(done, summary.total)
    summary.seconds = time.perf_counter() - started
    atomic_write_text(run.folder / ERRORS_NAME, _error_lines(summary.failed))
    return summary


def _check_sources(out: Path, files: list[Path], records: list[ClipRecord], manifest: Manifest, config) -> None:
    """The videos of ``records`` whose flow is in ``out`` were computed from their files, as ``files`` record them."""
    present = [record for record in records if output_path(out, record.video_id, config.format).exists()]
    check_sources(
        files,
        present,
        manifest.path,
        store=f"flow folder {out}",
        bounds=False,
        fix="use another --out for this manifest",
    )


def _merge(out: Path, config: FlowConfig, split: list[Path], abandoned: list[Path]) -> None:
    """Write the folder's shared files from its own and the shards' (see the module docs).

    Source records: the folder's, then those of abandoned splits (videos they finished are in
    place), then the split's; one line per video whose flow is in place, in id order. Errors: the
    split's, and those of the folder's log that its shards did not try again (after a merge, a
    shard can be rerun alone), without the videos whose flow is in place, in id order.
    """
    files = [out / SOURCES_NAME, *(folder / SOURCES_NAME for folder in abandoned + split)]
    recorded = read_sources(files) or {}
    present = {
        video_id: entry for video_id, entry in recorded.items() if output_path(out, video_id, config.format).exists()
    }
    atomic_write_text(out / SOURCES_NAME, recorded_lines(present))
    shards = [folder_shard(folder) for folder in split]
    failed = {
        video_id: reason
        for video_id, reason in read_errors(out / ERRORS_NAME)
        if not any(shard.holds(video_id) for shard in shards)
    }
    failed.update(pair for folder in split for pair in read_errors(folder / ERRORS_NAME))
    missing = [
        (video_id, reason)
        for video_id, reason in failed.items()
        if not output_path(out, video_id, config.format).exists()
    ]
    atomic_write_text(out / ERRORS_NAME, _error_lines(missing))


def _error_lines(failed: list[tuple[str, str]]) -> str:
    return "".join(f"{video_id}\t{' '.join(reason.split())}\n" for video_id, reason in sorted(failed))


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
    elif any(not entry.name.startswith((_TMP_PREFIX, f".{STORE}")) for entry in out.iterdir()):
        raise AvlabelError(f"{out} is not empty and is not an avlabel flow folder; choose an empty or new --out")


def _remove_leftovers(out: Path, targets: Iterable[Path], shard: Shard, format: str) -> None:
    """Delete the hidden temporaries a killed run left next to ``targets`` (never renamed into place).

    Only those of this shard's videos: the other shards of a split, running side by side, write
    theirs in the same folders (a run of the whole manifest owns them all).
    """
    for folder in {target.parent for target in targets}:
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if not entry.name.startswith(_TMP_PREFIX):
                continue
            video_id = (folder / _temporary_target(entry.name)).relative_to(out).as_posix()
            if shard.holds(video_id.removesuffix(".npz") if format == "npz" else video_id):
                shutil.rmtree(entry.path) if entry.is_dir() else os.unlink(entry.path)


def _temporary(target: Path) -> Path:
    """Where ``target`` is written before it is renamed into place: ``.avlabel-tmp-<pid>-<name>``."""
    return target.with_name(f"{_TMP_PREFIX}{os.getpid()}-{target.name}")


def _temporary_target(name: str) -> str:
    """The target name of a temporary named by `_temporary`."""
    return name[len(_TMP_PREFIX) :].partition("-")[2]


def _map_videos(
    records: list[ClipRecord],
    out: Path,
    config: FlowConfig,
    workers: int,
    manifest: str | None,
    device: str | None,
    run: ShardRun,
):
    """Yield ``(video_id, flow frames written | error message)`` as videos finish."""
    task = (out, config, run.folder / SOURCES_NAME, manifest, device)
    if workers <= 1 or len(records) <= 1:
        for record in records:
            yield record.video_id, _flow_task(record, *task)
        return
    # spawn: the parent runs a progress thread, and forking a threaded process is unsafe.
    initargs = (os.getpid(), str(run.workers_lock))
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=initargs
    ) as pool:
        pending = {}
        queue = iter(records)
        for record in queue:
            pending[pool.submit(_flow_task, record, *task)] = record.video_id
            if len(pending) >= 2 * workers:
                break
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield pending.pop(future), future.result()
                record = next(queue, None)
                if record is not None:
                    pending[pool.submit(_flow_task, record, *task)] = record.video_id


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
    record: ClipRecord, out: Path, config: FlowConfig, sources: Path, manifest: str | None, device: str | None
) -> int | str:
    """Compute and atomically store one video's flow; return flow frames written or the error text.

    Its source record goes to ``sources`` (the shard's own file) before the flow is visible.
    """
    target = output_path(out, record.video_id, config.format)
    # A hidden sibling renamed into place when complete: a killed run leaves only temporaries,
    # which the next run deletes (_remove_leftovers), never a half-written video.
    tmp = _temporary(target)
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
        append_sources(sources, source_lines([record], manifest))  # durable before the flow is visible
        os.replace(tmp, target)
        return writer.count
    except Exception as error:  # noqa: BLE001 - a long job records the failure and goes on
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        return str(error) if isinstance(error, AvlabelError) else f"{type(error).__name__}: {error}"
