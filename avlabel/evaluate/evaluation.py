"""``avlabel eval``: a trained run applied to one split of a manifest.

The model is rebuilt with `avlabel.train.checkpoint.load_run`, its inputs as training saw
them (`run_inputs`), every view of every video goes through it
(`views`), and the per-video averages are scored
(`scoring`) and written (`outputs`). A model with a matching head is run a second time with
every video's views carrying another video's audio (`mismatched_audio`), to score the head on
mismatched pairs as well: the evaluation then costs two passes. Videos that
cannot be decoded are skipped, counted and listed, never fatal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from avlabel._checks import check_output_dir
from avlabel.errors import AvlabelError
from avlabel.evaluate.multiview import ViewGrid
from avlabel.evaluate.outputs import write_outputs
from avlabel.evaluate.run_inputs import (
    check_known_classes,
    clip_audio,
    clip_dataset,
    clip_settings,
    model_label_set,
    run_dir_of,
)
from avlabel.evaluate.scoring import default_tags, relevant_flags, split_metrics
from avlabel.evaluate.views import ViewItems, run_model


def mismatched_audio(has_audio: np.ndarray, seed: int = 0) -> np.ndarray:
    """``(N,)`` for each row, another row with audio whose audio its views get (rows without audio: themselves).

    A fixed random cycle through the rows with audio (seeded, so every evaluation pairs alike):
    never a row's own audio, and every audio is used once.
    """
    partners = np.arange(len(has_audio))
    order = np.random.default_rng(seed).permutation(np.flatnonzero(has_audio))
    if len(order) > 1:
        partners[order] = np.roll(order, -1)
    return partners


def evaluate_run(
    run: str | os.PathLike[str],
    manifest: str | os.PathLike[str],
    split: str = "test",
    checkpoint: str = "best",
    views: ViewGrid | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    audio_dir: str | os.PathLike[str] | None = None,
    flow_dir: str | os.PathLike[str] | None = None,
    tags: str | os.PathLike[str] | None = None,
    target_threshold: float | None = None,
    device: str = "cpu",
    batch_size: int = 8,
    workers: int = 2,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a trained run on one split of a manifest and write the results.

    Args:
        run: a run directory (or a ``.safetensors`` checkpoint file).
        manifest: the manifest CSV; ``split`` selects its rows.
        checkpoint: "best", "last" or a path (for a run directory).
        views: crops x clips per video (None: the paper's 3 x 4).
        output_dir: where ``metrics.json``, ``predictions.csv``, ``confusion.png`` and
            ``skipped.tsv`` go; default ``RUN_DIR/eval/{split}-{checkpoint}``.
        audio_dir, flow_dir: override the run's audio cache / flow folder (needed when the
            evaluated videos are not those the run was configured with).
        tags: a tags CSV with a ``relevant`` column (default: ``audio_tags.csv`` beside the
            manifest, when it exists) to judge the relevance network against ground truth.
        target_threshold: relevance targets at or above it count as relevant (default: alpha).
        device: torch device; ``batch_size`` views per forward pass; ``workers`` loader processes.
        progress: show a progress bar on stderr.

    Returns:
        The metrics dictionary that was written to ``metrics.json``.

    Raises:
        AvlabelError: no checkpoint, unreadable manifest, unknown split or classes, a cache that
            does not fit the model, or no decodable video at all.
    """
    import torch

    from avlabel.data.manifest import read_manifest
    from avlabel.evaluate.metrics import json_safe
    from avlabel.evaluate.report import eval_dir
    from avlabel.train.checkpoint import load_run, resolve_checkpoint

    views = views or ViewGrid()
    device = torch.device(device)
    weights = resolve_checkpoint(run, checkpoint)
    run_dir = run_dir_of(Path(run), weights)
    if not Path(run).is_dir():  # a checkpoint file: name the results after it, not after --checkpoint
        checkpoint = weights.name.split(".")[0]
    if output_dir is None:
        if run_dir is None:
            raise AvlabelError(f"{run} is a checkpoint file outside a run directory; pass -o DIR for the results")
        output_dir = eval_dir(run_dir, split, checkpoint)
    output_dir = check_output_dir(output_dir, "-o")
    rows = read_manifest(manifest, check_files=False).split(split)  # before the model loads: a typo fails at once
    loaded = load_run(run, checkpoint=checkpoint, device=str(device))
    settings = clip_settings(loaded, flow_dir, audio_dir)
    label_set = model_label_set(loaded)
    check_known_classes(rows, label_set, f"the {split!r} split of {manifest}")
    video_ids = [record.video_id for record in rows]
    labels = np.array([label_set.index(record.label) for record in rows], dtype=np.int64)
    if not loaded.model_config.visual_modalities:
        views = ViewGrid(spatial_crops=1, temporal_clips=views.temporal_clips)  # audio has no crops

    error_log = output_dir / "skipped.tsv"
    clips = clip_dataset(loaded, rows, label_set, views, settings, error_log)
    audio = clip_audio(loaded, rows, label_set, settings.audio_dir) if loaded.model_config.has_audio else None
    items = ViewItems(clips, audio, labels, video_ids, views, audio_tokens=loaded.model_config.reads_audio_tokens)
    tags_path = Path(tags) if tags is not None else default_tags(Path(manifest))
    relevant = relevant_flags(tags_path, video_ids)
    # Only now that every input passed its checks: a refused evaluation leaves no empty folder.
    output_dir.mkdir(parents=True, exist_ok=True)
    error_log.unlink(missing_ok=True)  # the dataset appends; start this evaluation's list afresh
    result, skipped = run_model(loaded, items, views, device, batch_size, workers, progress, f"eval {split}")

    evaluated = result.evaluated
    if not evaluated.any():
        raise AvlabelError(f"none of the {len(rows)} videos of split {split!r} could be decoded; see {error_log}")
    negative_match = None
    if result.match_probability is not None:  # a matching head: score it on other videos' audio too
        partners = ViewItems(
            clips,
            audio,
            labels,
            video_ids,
            views,
            audio_tokens=loaded.model_config.reads_audio_tokens,
            audio_rows=mismatched_audio(audio.present.any(axis=1)),
        )
        description = f"eval {split}, other videos' audio"
        negative_match = run_model(loaded, partners, views, device, batch_size, workers, progress, description)[0]
        negative_match = negative_match.match_probability
    metrics = split_metrics(loaded, result, labels, video_ids, relevant, target_threshold, negative_match)
    metrics.update(
        run=str(run_dir or run),
        checkpoint=str(loaded.checkpoint_path),
        checkpoint_tag=checkpoint,
        manifest=str(Path(manifest).resolve()),
        manifest_sha256=rows.sha256,
        split=split,
        views=str(views),
        tags=str(tags_path) if tags_path is not None else None,
        audio_cache=settings.audio_dir,
        skipped_videos=sorted({video_id for _, video_id, _ in skipped}),
        output_dir=str(output_dir),
    )
    write_outputs(output_dir, metrics, result, labels, video_ids, loaded.classes)
    return json_safe(metrics)
