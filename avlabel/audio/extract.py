"""Fill the audio cache: decode every manifest item, embed its windows, commit as we go.

DataLoader workers decode (PyAV + libswresample) in parallel. Where the filterbank runs depends on
the embedder's device: on a GPU it runs batched in the main process next to the model (the
NumPy/Kaldi filterbank would otherwise cost more CPU per clip than decoding); on the CPU each
worker computes its item's features, so the filterbank scales with the workers too. Windows
without audible audio skip the model and get zero rows. With ``tokens``, the embedder's time
tokens, their valid lengths and energies (`avlabel.audio.tokens`) come from the same
forward pass and are stored beside the embeddings. Items that cannot be read are skipped,
counted and listed in ``audio_bad_items.tsv``; they are retried on the next run. Items already
in the cache are not recomputed, so rerunning after an interruption, or on a grown manifest,
only processes what is missing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avlabel._progress import progress_bar
from avlabel.audio.cache import SOURCES, AudioCacheWriter, TokenRows, cache_identity, holds_tokens
from avlabel.audio.decode import SAMPLE_RATE, WINDOW_SECONDS, AudioStatus, load_windows
from avlabel.data.sources import append_sources, source_lines
from avlabel.errors import AvlabelError


@dataclass
class ExtractSummary:
    """What one run of `extract_audio` did."""

    items: int = 0  # unique videos asked for
    cached: int = 0  # already in the cache before this run
    computed: int = 0  # added by this run
    bad: list[tuple[str, str, str]] = field(default_factory=list)  # (video_id, path, reason)
    seconds: float = 0.0

    @property
    def items_per_second(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else 0.0


def extract_audio(
    records: Sequence,
    directory: str | os.PathLike[str],
    embedder,
    num_windows: int = 1,
    window_seconds: float = WINDOW_SECONDS,
    workers: int = 0,
    batch_size: int = 32,
    progress: bool = True,
    manifest: str | os.PathLike[str] | None = None,
    tokens: bool | None = None,
    cached_elsewhere: Collection[str] = frozenset(),
) -> ExtractSummary:
    """Add the audio of ``records`` that is not cached yet to the cache in ``directory``.

    Each video's source file is recorded (see `avlabel.data.sources`); check an existing
    cache with `AudioCache.check_sources` before reusing it for ``records``.

    Args:
        records: manifest records (anything with ``video_id``, ``path``, ``start``, ``end``); a
            video id listed twice must name the same file and bounds.
        directory: cache directory (see `avlabel.audio.cache` for the layout).
        embedder: an embedder from `avlabel.audio.embedders.build_embedder`.
        num_windows: audio windows per video.
        window_seconds: window length.
        workers: DataLoader worker processes for decoding (0: decode in this process).
        batch_size: videos per model batch and per commit.
        progress: show a rich progress bar on stderr.
        manifest: the manifest ``records`` come from, recorded with each video's source file.
        tokens: also store time tokens (see `avlabel.audio.cache`, "Versions"); None: as the
            existing cache in ``directory`` does (none for a new cache).
        cached_elsewhere: videos not to compute because another cache holds them (a shard's
            cache skips what the cache it will be merged into has).
    """
    from torch.utils.data import DataLoader

    started = time.perf_counter()
    unique = unique_records(records)
    summary = ExtractSummary(items=len(unique))
    if tokens is None:
        tokens = holds_tokens(directory)
    identity = identity_of(embedder, num_windows, window_seconds, tokens)
    with AudioCacheWriter.with_identity(directory, identity) as writer:
        pending = [
            record
            for record in unique
            if record.video_id not in writer.done and record.video_id not in cached_elsewhere
        ]
        summary.cached = len(unique) - len(pending)
        by_id = {record.video_id: record for record in pending}
        on_gpu = embedder.device.type != "cpu"
        dataset = _WindowDataset(pending, num_windows, window_seconds, None if on_gpu else embedder.filterbank)
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=workers,
            collate_fn=_collate,
            worker_init_fn=_init_worker,
            pin_memory=on_gpu,
        )
        with progress_bar("audio", total=len(pending), disable=not progress) as bar:
            try:
                for batch in loader:
                    summary.bad.extend(batch["bad"])
                    if batch["video_ids"]:
                        _embed_batch(batch, embedder, writer, num_windows, on_gpu, tokens)
                        # Sources are durable before the commit makes the rows visible.
                        append_sources(
                            Path(directory) / SOURCES, source_lines((by_id[v] for v in batch["video_ids"]), manifest)
                        )
                        writer.commit()
                        summary.computed += len(batch["video_ids"])
                    bar.advance(len(batch["video_ids"]) + len(batch["bad"]))
            finally:
                writer.write_bad_items(summary.bad)
    summary.seconds = time.perf_counter() - started
    return summary


def identity_of(embedder, num_windows: int, window_seconds: float, tokens: bool) -> dict:
    """What the rows of a cache ``embedder`` fills are (`avlabel.audio.cache.cache_identity`)."""
    windows = {"count": num_windows, "seconds": window_seconds, "sample_rate": SAMPLE_RATE}
    token_section = token_header(embedder) if tokens else None
    return cache_identity(embedder.identity, embedder.dim, embedder.labels, windows, token_section)


def token_header(embedder) -> dict:
    """The ``tokens`` section of a cache header for ``embedder``'s time tokens (see `avlabel.audio.cache`)."""
    return {
        **embedder.token_grid.to_dict(),
        "dim": embedder.token_dim,
        "silence_energy": embedder.filterbank.config.silence_energy,
    }


def _embed_batch(batch: dict, embedder, writer: AudioCacheWriter, num_windows: int, on_gpu: bool, tokens: bool) -> None:
    import torch

    status = batch["status"]  # (n * W,) uint8
    audible = torch.from_numpy(status == AudioStatus.OK)
    count = len(status)
    embedding = np.zeros((count, embedder.dim), dtype=np.float16)
    probs = np.zeros((count, len(embedder.labels)), dtype=np.float16) if embedder.labels is not None else None
    grid = embedder.token_grid
    token_rows = None
    if tokens:  # windows without audio: zero tokens, none valid, the energy of silence
        token_rows = TokenRows(
            np.zeros((count, grid.count, embedder.token_dim), np.float16),
            np.zeros(count, np.uint16),
            np.full((count, grid.count), embedder.filterbank.config.silence_energy, np.float32),
        )
    if audible.any():
        if on_gpu:  # filterbank next to the model; the whole pinned batch moves asynchronously
            on_device = audible.to(embedder.device)
            waveforms = batch["waveforms"].to(embedder.device, non_blocking=True)[on_device]
            lengths = batch["lengths"].to(embedder.device, non_blocking=True)[on_device]
            features, num_frames = embedder.filterbank(waveforms, lengths)
        else:  # the workers computed the features
            features, num_frames = batch["features"][audible], batch["num_frames"][audible]
        out = embedder.embed(features, num_frames, tokens=tokens)
        index = audible.numpy()
        embedding[index] = out.embedding.cpu().numpy().astype(np.float16)
        if probs is not None:
            probs[index] = out.probs.cpu().numpy().astype(np.float16)
        if token_rows is not None:
            token_rows.tokens[index] = out.tokens.cpu().numpy().astype(np.float16)
            token_rows.length[index] = grid.valid_length(num_frames).cpu().numpy()
            token_rows.energy[index] = grid.energy(features, num_frames, embedder.filterbank.config).cpu().numpy()
    for item, video_id in enumerate(batch["video_ids"]):
        rows = slice(item * num_windows, (item + 1) * num_windows)
        window_tokens = None if token_rows is None else TokenRows(*(array[rows] for array in token_rows))
        writer.append(video_id, embedding[rows], None if probs is None else probs[rows], status[rows], window_tokens)


class _WindowDataset:
    """Decodes one item's windows (and its filterbank features when given a filterbank)."""

    def __init__(self, records: Sequence, num_windows: int, window_seconds: float, filterbank):
        self.records = records
        self.num_windows = num_windows
        self.window_seconds = window_seconds
        self.filterbank = filterbank

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        try:
            windows = load_windows(record.path, record.start, record.end, self.num_windows, self.window_seconds)
        except Exception as error:  # noqa: BLE001 -- a long job skips and lists any unreadable item
            reason = str(error) if isinstance(error, AvlabelError) else f"{type(error).__name__}: {error}"
            return {"video_id": record.video_id, "path": str(record.path), "error": reason}
        item = {"video_id": record.video_id, "error": None, "status": windows.status}
        if self.filterbank is None:
            item.update(waveforms=windows.waveforms, lengths=windows.lengths)
        else:
            item["features"], item["num_frames"] = self.filterbank(windows.waveforms, windows.lengths)
        return item


def _collate(items: list[dict]) -> dict:
    import torch

    good = [item for item in items if item["error"] is None]
    batch = {
        "video_ids": [item["video_id"] for item in good],
        "bad": [(item["video_id"], item["path"], item["error"]) for item in items if item["error"] is not None],
        "status": np.concatenate([item["status"] for item in good]) if good else np.zeros(0, np.uint8),
    }
    if good and "waveforms" in good[0]:
        batch["waveforms"] = torch.from_numpy(np.concatenate([item["waveforms"] for item in good]))  # (n*W, N)
        batch["lengths"] = torch.from_numpy(np.concatenate([item["lengths"] for item in good]))
    elif good:
        batch["features"] = torch.cat([item["features"] for item in good])  # (n*W, T, F)
        batch["num_frames"] = torch.cat([item["num_frames"] for item in good])
    return batch


def _init_worker(worker_id: int) -> None:
    import torch

    # Workers run side by side; intra-op threads in each would only oversubscribe the cores.
    torch.set_num_threads(1)


def unique_records(records: Sequence) -> list:
    """The records with each video once, in manifest order (a video listed twice must be the same clip)."""
    seen: dict[str, object] = {}
    for record in records:
        previous = seen.get(record.video_id)
        if previous is None:
            seen[record.video_id] = record
        elif (previous.path, previous.start, previous.end) != (record.path, record.start, record.end):
            raise AvlabelError(
                f"video_id {record.video_id!r} appears twice in the manifest with different files or bounds "
                f"({previous.path} vs {record.path}); give each clip its own video_id"
            )
    return list(seen.values())
