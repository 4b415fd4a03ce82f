"""The ``avlabel targets`` job: manifest + SAVLD -> audio cache, relevance targets and a report.

Order of work: every input is validated before anything is computed (manifest labels against the
SAVLD's video labels, the tagger's classes against the SAVLD's audio labels, tags against the
manifest), then the cache is filled (resumably, see `avlabel.audio.cache`), then targets and
the report are derived from the committed cache -- cheap, so they are always recomputed and
follow the current manifest, ``--ya``, ``--k``, ``--overlap`` and ``--normalize``.

Shards. A run can cache one shard of the manifest (`avlabel._sharding`), the shards of a split
running at the same time into one output directory (`avlabel._shard_folder`). A shard fills a
cache of its own (``.audio_shards/I-of-N/``, a complete cache: resumable, crash-safe, skipping the
videos the output's cache has); the last shard to finish merges the split into the output's
cache, appending every shard's rows in manifest order with their source records and listing
their unreadable items in manifest order -- what one run over the whole manifest appends (rows in
manifest order, since the decoding loader keeps order) -- and then writes the targets and the
report. The merge is automatic because every shard has what it needs (the same options), so a
Slurm array or a torchrun job needs no step after it; ``merge=True`` (``--merge``) runs it alone,
for a merge that failed. Shards must agree on their options and manifest (checked when a shard
starts and again at the merge), and their caches and the output's must hold the manifest's files.

Output directory::

    audio_cache.json, audio_index.tsv, audio_*.f16/.u8   the cache (see avlabel.audio.cache), with
    audio_token*.f16/.u16/.f32                            time tokens when asked for (--tokens)
    audio_bad_items.tsv                                   unreadable items of the last run
    targets.npz, targets.json                             RelevanceTargets (avlabel.audio.targets)
    targets.csv                                           video_id,window,label,status,target
    report.json, target_histogram.png, class_relevance.png
    .audio_shards/                                        shards' caches until the merge
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avlabel._checks import DEFAULT_WARN_FAILED_SHARE, check_failures, check_media_exist
from avlabel._io import atomic_path, atomic_write_json
from avlabel._shard_folder import ShardRun, folder_shard, merge_staged, shard_record, staged_files, staging_dir
from avlabel._sharding import WHOLE, Shard
from avlabel.audio.cache import (
    BAD_ITEMS,
    HEADER,
    SOURCES,
    STORE,
    AudioCache,
    AudioCacheWriter,
    check_compatible,
    check_not_writing,
    holds_tokens,
    missing_cache_error,
    read_bad_item_rows,
)
from avlabel.audio.decode import WINDOW_SECONDS, AudioStatus
from avlabel.audio.embedders import build_embedder
from avlabel.audio.extract import ExtractSummary, extract_audio, identity_of, unique_records
from avlabel.audio.report import plot_report, relevance_report
from avlabel.audio.targets import (
    RelevanceTargets,
    check_target_settings,
    read_tags,
    tag_sets,
    top_labels,
)
from avlabel.data.sources import append_sources, read_sources, recorded_lines
from avlabel.errors import AvlabelError


@dataclass
class TargetsRun:
    """What one ``avlabel targets`` process did."""

    shard: Shard
    extraction: ExtractSummary | None  # None for a merge step, which computes nothing
    waiting: list[Shard] = field(default_factory=list)  # shards of its split still to finish
    report: dict | None = None  # written when the cache is whole: by a whole run or the merge of a split


def make_targets(
    manifest: str | os.PathLike[str],
    savld: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    ast: str | os.PathLike[str] | None = None,
    tags: str | os.PathLike[str] | None = None,
    embedder: str = "ast",
    ya: int = 20,
    k: int | None = None,
    overlap: str = "iou",
    normalize: str = "max",
    num_windows: int = 1,
    window_seconds: float = WINDOW_SECONDS,
    workers: int = 0,
    batch_size: int = 32,
    device: str = "cpu",
    progress: bool = True,
    warn_failed_share: float = DEFAULT_WARN_FAILED_SHARE,
    tokens: bool | None = None,
    shard: Shard = WHOLE,
    merge: bool = False,
) -> TargetsRun:
    """Run the job, or one shard of it, or the merge of its shards; see the module docs.

    Args:
        manifest: manifest CSV (``video_id,path,label,split,start,end``).
        savld: SAVLD file (``.json`` or paper-format ``.txt``).
        output: output directory (see the module docs); reusing it resumes the cache.
        ast: AST hub id or local directory for the ``ast`` embedder (default: AudioSet AST-base).
        tags: tags CSV replacing the AST predictions as the audio label sets ``A``.
        embedder: ``ast`` or ``logmel`` (the latter needs ``tags``).
        ya: ``Y_a``, AST labels per audio window (ignored with ``tags``).
        k: SAVLD labels per class (default: all the SAVLD has).
        overlap: ``iou`` or ``dice``.
        normalize: ``max`` (divide by the largest reachable overlap) or ``none``; see
            `avlabel.audio.targets`.
        num_windows: audio windows per video (1 for training, more for multi-clip testing).
        window_seconds: window length.
        workers: decoding worker processes.
        batch_size: videos per model batch.
        device: torch device for the filterbank and the embedder.
        progress: show progress on stderr.
        warn_failed_share: warn (`AvlabelWarning`) when more than this
            share of the videos cannot be read; all of them failing is an error.
        tokens: also cache the embedder's time tokens (AVT's audio input, `avlabel.audio.tokens`);
            None: as the existing cache in ``output`` does, none for a new one.
        shard: the share of the manifest to cache (default: all of it). A shard fills a cache
            of its own; the last shard of the split to finish merges them into ``output`` and
            writes the targets and the report.
        merge: compute nothing, merge the finished shards staged in ``output`` (if any) and
            write the targets and the report; refused while shards are missing.

    Raises:
        AvlabelError: any input that cannot serve (checked before a model loads), shards of the
            split that ran with other options or manifest, or, for ``merge``, shards still missing.
    """
    from avlabel.data.manifest import read_manifest
    from avlabel.savld import load_savld

    check_target_settings(overlap, normalize)
    output = Path(output)
    table = load_savld(savld)
    # Missing files are not fatal here: the job skips and lists them like any unreadable item.
    records = read_manifest(manifest, check_files=False)
    video_class = _video_classes(records, table, savld)
    k = _check_k(k, table.k)
    given = _given_tags(tags, table, video_class, embedder, ya)
    _check_cache_reuse(output, records, manifest, video_class, shard, media=not merge)
    tokens = holds_tokens(output) if tokens is None else tokens
    settings = {
        "manifest_sha256": records.sha256,
        "savld_sha256": _file_sha256(savld),
        "tags_sha256": None if tags is None else _file_sha256(tags),
        "embedder": embedder,
        "windows": num_windows,
        "window_seconds": window_seconds,
        "tokens": tokens,
        "ya": None if given is not None else ya,
        "k": k,
        "overlap": overlap,
        "normalize": normalize,
    }
    order = [record.video_id for record in unique_records(records)]
    merged_runs: list[dict] = []

    def merge_split(split: list[Path], abandoned: list[Path]) -> None:
        merged_runs.extend(shard_record(folder) for folder in split)
        if not (split and folder_shard(split[0]).whole):  # a whole run wrote the cache itself
            _check_caches_sources(split, records, manifest)
            merge_shard_caches(output, split, order)

    if merge:
        if not shard.whole:
            raise AvlabelError(f"--merge joins the shards of a split; leave out --shard {shard} (or run that shard)")
        merge_staged(output, STORE, settings, merge_split, "avlabel targets")
        if not (output / HEADER).is_file():
            raise missing_cache_error(output)
        summary = None
    else:
        model = build_embedder(embedder, ast, device)
        if model.labels is not None:
            from avlabel.audio.ast import check_label_order

            check_label_order(model.labels, table.audio, source=f"the AST checkpoint {model.source}")
        summary, waiting = _extract_shard(
            records,
            output,
            model,
            shard,
            settings,
            merge_split,
            tokens,
            manifest,
            warn_failed_share,
            num_windows=num_windows,
            window_seconds=window_seconds,
            workers=workers,
            batch_size=batch_size,
            progress=progress,
        )
        if waiting:
            return TargetsRun(shard, summary, waiting)
    extraction = _extraction(output, order, merged_runs)
    report = _write_targets(
        output, manifest, savld, tags, table, video_class, given, k, ya, overlap, normalize, num_windows, extraction
    )
    return TargetsRun(shard, summary, [], report)


def _extract_shard(
    records,
    output: Path,
    model,
    shard: Shard,
    settings: dict,
    merge,
    tokens: bool,
    manifest,
    warn_failed_share: float,
    **extraction,
) -> tuple[ExtractSummary, list[Shard]]:
    """Fill the cache (a whole run) or the shard's own cache, and finish the shard (merging when it is the last)."""
    mine = shard.select(unique_records(records))
    created = not output.exists()
    main = AudioCache(output) if (output / HEADER).is_file() else None
    identity = identity_of(model, extraction["num_windows"], extraction["window_seconds"], tokens)
    if main is not None:
        check_compatible(main.header, identity, output)  # before a shard computes rows that could not be merged
    with ShardRun(output, STORE, shard, "avlabel targets", settings) as run:
        summary = extract_audio(
            mine,
            output if shard.whole else run.folder,
            model,
            manifest=manifest,
            tokens=tokens,
            cached_elsewhere=() if shard.whole or main is None else set(main.video_ids),
            **extraction,
        )
        waiting = run.finish(merge, _run_record(summary))
    if created and shard.whole and summary.computed == 0 and len(summary.bad) == summary.items:
        shutil.rmtree(output, ignore_errors=True)  # an empty cache and an error list: not worth leaving behind
    check_failures(
        [(video_id, reason) for video_id, _, reason in summary.bad],
        summary.items,
        what="videos",
        listed_in=(run.folder if waiting else output) / BAD_ITEMS,
        warn_share=warn_failed_share,
    )
    return summary, waiting


def _run_record(summary: ExtractSummary) -> dict:
    """What a shard's extraction did, as its done marker keeps it for the merge's report."""
    return {
        "videos": summary.items,
        "already_cached": summary.cached,
        "computed": summary.computed,
        "bad_items": len(summary.bad),
        "seconds": summary.seconds,
    }


def _extraction(output: Path, order: list[str], runs: list[dict]) -> dict:
    """The report's ``extraction`` section: the runs that filled the cache (a split's shards summed;
    none for a merge step with nothing to merge, which finds every cached video cached)."""
    if not runs:
        cache = AudioCache(output)
        runs = [{"already_cached": sum(video_id in cache for video_id in order)}]
    computed = sum(run.get("computed", 0) for run in runs)
    seconds = sum(run.get("seconds", 0.0) for run in runs)
    return {
        "videos": len(order),
        "already_cached": sum(run.get("already_cached", 0) for run in runs),
        "computed": computed,
        "bad_items": len(read_bad_item_rows(output)),
        "seconds": round(seconds, 3),
        "videos_per_second": round(computed / seconds, 2) if seconds > 0 else 0.0,
    }


def merge_shard_caches(output: Path, split: list[Path], order: list[str]) -> None:
    """Append the rows of the split's shard caches to the cache in ``output``, in manifest order.

    Every array of the cache is copied (`AudioCacheWriter.copy_video` follows the cache's own list
    of arrays), the source records are appended for the same videos in the same order before the
    commit, and the unreadable items become the shards' (and those of the cache's own list whose
    shards did not run again), in manifest order: exactly what one run over the whole manifest
    appends and lists.
    """
    caches = [AudioCache(folder) for folder in split if (folder / HEADER).is_file()]
    if not caches:
        return
    for cache in caches[1:]:
        check_compatible(caches[0].header, cache.header, cache.directory)
    holder = {video_id: cache for cache in caches for video_id in cache.video_ids}
    recorded = read_sources([cache.directory / SOURCES for cache in caches]) or {}
    shards = [folder_shard(folder) for folder in split]
    with AudioCacheWriter.with_identity(output, caches[0].header) as writer:
        new = [video_id for video_id in order if video_id in holder and video_id not in writer.done]
        append_sources(
            output / SOURCES, recorded_lines(recorded, [video_id for video_id in new if video_id in recorded])
        )
        for video_id in new:
            writer.copy_video(holder[video_id], video_id)
        kept = [row for row in read_bad_item_rows(output) if not any(shard.holds(row[0]) for shard in shards)]
        bad = {row[0]: row for row in kept}
        bad.update((row[0], row) for folder in split for row in read_bad_item_rows(folder))
        position = {video_id: index for index, video_id in enumerate(order)}
        listed = sorted(bad.values(), key=lambda row: position.get(row[0], len(order)))
        writer.write_bad_items([row for row in listed if row[0] not in writer.done])


def _file_sha256(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _write_targets(
    output: Path, manifest, savld, tags, table, video_class, given, k, ya, overlap, normalize, num_windows, extraction
) -> dict:
    """Targets, ``targets.csv``, the report and its plots from the whole cache in ``output``."""
    cache = AudioCache(output)
    has_audio = cache.has_audio
    audio_sets = (
        top_labels(cache.probs, ya, has_audio) if given is None else tag_sets(cache.video_ids, given, has_audio)
    )
    row_class = np.array([video_class.get(video_id, -1) for video_id in cache.video_ids], dtype=np.int32)
    meta = {
        "source": "tags" if given is not None else "ast",
        "ya": None if given is not None else ya,
        "k": k,
        "tags": str(tags) if tags is not None else None,
        "manifest": str(manifest),
        "savld": str(savld),
        "savld_provenance": table.provenance,
        "video_labels": {"name": table.video.name, "sha256": table.video.sha256, "count": len(table.video)},
        "audio_labels": {"name": table.audio.name, "sha256": table.audio.sha256, "count": len(table.audio)},
        "embedder": cache.header["embedder"],
    }
    targets = RelevanceTargets(
        audio_sets, table.neighbours[:, :k], row_class, len(table.audio), overlap, meta, normalize
    )
    targets.save(output)

    rows = np.flatnonzero(row_class >= 0)  # the windows of videos with a class
    values = targets.for_items(rows)
    relevant = None
    if given is not None and given.relevant:
        relevant = np.array([given.relevant.get(cache.video_ids[row], -1) for row in rows])
    report = {
        "settings": {key: meta[key] for key in ("source", "ya", "k", "tags", "manifest", "savld")}
        | {"overlap": overlap, "normalize": normalize, "windows": num_windows, "tokens": cache.has_tokens},
        "extraction": extraction,
        **relevance_report(values, row_class[rows], np.asarray(cache.status)[rows], table.video.labels, relevant),
    }
    atomic_write_json(output / "report.json", report)
    plot_report(report, output)
    _write_targets_csv(output / "targets.csv", cache, rows, values, row_class, table.video.labels)
    return report


def _given_tags(tags, table, video_class: dict[str, int], embedder: str, ya: int):
    """The tags file's label sets (None: the embedder's predictions), after checking they can serve."""
    if tags is None and embedder != "ast":
        raise AvlabelError(
            f"the {embedder!r} embedder predicts no audio labels; pass --tags FILE or use --embedder ast"
        )
    if not 1 <= ya <= len(table.audio):
        raise AvlabelError(f"--ya must be between 1 and {len(table.audio)} (audio labels of the SAVLD), got {ya}")
    if tags is None:
        return None
    given = read_tags(tags, table.audio)
    untagged = [video_id for video_id in video_class if video_id not in given.labels]
    if untagged:
        raise AvlabelError(
            f"{len(untagged)} manifest videos have no row in {tags} (e.g. {untagged[0]!r}); tag every video or drop them"
        )
    return given


def _check_cache_reuse(output: Path, records, manifest, video_class: dict[str, int], shard: Shard, media: bool) -> None:
    """A reused cache (and the shard's own, from an earlier run of it) must hold this manifest's files,
    and no process may be writing it; with ``media``, a job none of whose videos exist is refused up front."""
    existing = AudioCache(output) if (output / HEADER).is_file() else None
    _check_caches_sources([output, *staged_caches(output)], records, manifest)
    if shard.whole:  # a whole run (or a merge) writes the cache itself; a shard writes its own
        check_not_writing(output)
    if media and (existing is None or not any(video_id in existing for video_id in video_class)):
        check_media_exist(records.records, manifest)  # all would fail: say so before loading a model or writing


def staged_caches(output: Path) -> list[Path]:
    """The caches of the shards staged in ``output`` (finished or not, of any split)."""
    return [path.parent for path in staged_files(output, STORE, HEADER)]


def _check_caches_sources(directories: list[Path], records, manifest) -> None:
    """Each cache in ``directories`` holds this manifest's files under its video ids (`AudioCache.check_sources`):
    the output's, and the shards' (which, started side by side, only meet at the merge)."""
    for directory in directories:
        if (directory / HEADER).is_file():
            staged = directory.parent.name == staging_dir(directory, STORE).name
            AudioCache(directory).check_sources(
                records,
                manifest,
                fix="use another -o folder for this manifest, or delete this folder's audio_* files to rebuild it",
                store=f"cache of shard {folder_shard(directory)} in {directory.parent.parent}" if staged else None,
            )


def _video_classes(records, table, savld_path) -> dict[str, int]:
    """video_id -> class index in the SAVLD's video label set (every manifest label must be there)."""
    classes: dict[str, int] = {}
    index_of: dict[str, int] = {}
    missing = []
    for record in records:
        if record.label not in index_of:
            try:
                index_of[record.label] = table.video.index(record.label)
            except AvlabelError:
                missing.append(record.label)
                index_of[record.label] = -1
        classes[record.video_id] = index_of[record.label]
    if missing:
        raise AvlabelError(
            f"{len(missing)} manifest labels are not video labels of the SAVLD {savld_path} (label set "
            f"'{table.video.name}'), e.g. {missing[0]!r}; build the SAVLD for the manifest's label set (avlabel savld)"
        )
    return classes


def _check_k(k: int | None, available: int) -> int:
    if k is None:
        return available
    if not 1 <= k <= available:
        raise AvlabelError(
            f"--k must be between 1 and {available} (labels per class in the SAVLD), got {k}; rebuild the SAVLD with a larger k"
        )
    return k


def _write_targets_csv(
    path: Path, cache: AudioCache, rows: np.ndarray, values: np.ndarray, row_class: np.ndarray, labels
) -> None:
    status_names = {int(code): code.name.lower() for code in AudioStatus}
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id", "window", "label", "status", "target"])
        writer.writerows(
            (
                cache.video_ids[row],
                int(cache.windows[row]),
                labels[row_class[row]],
                status_names[int(cache.status[row])],
                f"{value:.4f}",
            )
            for row, value in zip(rows, values)
        )
