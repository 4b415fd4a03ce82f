"""The ``avlabel targets`` job: manifest + SAVLD -> audio cache, relevance targets and a report.

Order of work: every input is validated before anything is computed (manifest labels against the
SAVLD's video labels, the tagger's classes against the SAVLD's audio labels, tags against the
manifest), then the cache is filled (resumably, see `avlabel.audio.cache`), then targets and
the report are derived from the committed cache -- cheap, so they are always recomputed and
follow the current manifest, ``--ya``, ``--k``, ``--overlap`` and ``--normalize``.

Output directory::

    audio_cache.json, audio_index.tsv, audio_*.f16/.u8   the cache (see avlabel.audio.cache), with
    audio_token*.f16/.u16/.f32                            time tokens when asked for (--tokens)
    audio_bad_items.tsv                                   unreadable items of the last run
    targets.npz, targets.json                             RelevanceTargets (avlabel.audio.targets)
    targets.csv                                           video_id,window,label,status,target
    report.json, target_histogram.png, class_relevance.png
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np

from avlabel._checks import DEFAULT_WARN_FAILED_SHARE, check_failures, check_media_exist
from avlabel._io import atomic_path, atomic_write_json
from avlabel.audio.cache import BAD_ITEMS, HEADER, AudioCache
from avlabel.audio.decode import WINDOW_SECONDS, AudioStatus
from avlabel.audio.embedders import build_embedder
from avlabel.audio.extract import extract_audio
from avlabel.audio.report import plot_report, relevance_report
from avlabel.audio.targets import (
    RelevanceTargets,
    check_target_settings,
    read_tags,
    tag_sets,
    top_labels,
)
from avlabel.errors import AvlabelError


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
) -> dict:
    """Run the whole job; returns the report (also written to ``output/report.json``).

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
    _check_cache_reuse(output, records, manifest, video_class)
    created = not output.exists()
    model = build_embedder(embedder, ast, device)
    if model.labels is not None:
        from avlabel.audio.ast import check_label_order

        check_label_order(model.labels, table.audio, source=f"the AST checkpoint {model.source}")

    summary = extract_audio(
        records,
        output,
        model,
        num_windows,
        window_seconds,
        workers,
        batch_size,
        progress,
        manifest=manifest,
        tokens=tokens,
    )
    if created and summary.computed == 0 and len(summary.bad) == summary.items:
        shutil.rmtree(output, ignore_errors=True)  # an empty cache and an error list: not worth leaving behind
    check_failures(
        [(video_id, reason) for video_id, _, reason in summary.bad],
        summary.items,
        what="videos",
        listed_in=output / BAD_ITEMS,
        warn_share=warn_failed_share,
    )
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
        "embedder": model.identity,
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
        "extraction": {
            "videos": summary.items,
            "already_cached": summary.cached,
            "computed": summary.computed,
            "bad_items": len(summary.bad),
            "seconds": round(summary.seconds, 3),
            "videos_per_second": round(summary.items_per_second, 2),
        },
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


def _check_cache_reuse(output: Path, records, manifest, video_class: dict[str, int]) -> None:
    """A reused cache must hold this manifest's files; a job none of whose videos exist is refused up front."""
    existing = AudioCache(output) if (output / HEADER).is_file() else None
    if existing is not None:
        existing.check_sources(
            records,
            manifest,
            fix="use another -o folder for this manifest, or delete this folder's audio_* files to rebuild it",
        )
    if existing is None or not any(video_id in existing for video_id in video_class):
        check_media_exist(records.records, manifest)  # all would fail: say so before loading a model or writing


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
