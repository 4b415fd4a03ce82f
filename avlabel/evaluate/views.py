"""Test views of a split: one item per (video, temporal clip, spatial crop), their collation, and the model run over them.

Evaluation (paper section 4.1) averages each video's softmax over its views
(`avlabel.evaluate.multiview`, 3 crops x 4 clips by default). A view's audio is the cached
window under its clip: temporal clip ``c`` of ``n`` takes window ``c * W // n`` of the ``W``
cached windows -- its embedding and, for a model that reads them, its time tokens. Views that
cannot be decoded are dropped from their batch and listed.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from avlabel.evaluate.multiview import MultiViewResult, ViewGrid

if TYPE_CHECKING:
    import torch

    from avlabel.train.checkpoint import LoadedRun


class ViewItems:
    """Test items: one per ``(video, clip, crop)`` view, with the audio window under the clip.

    Args:
        clips: the split's test-mode ``VideoClipDataset`` (``num_clips x num_crops`` items per
            row), or None for an audio-only model.
        audio: per-row audio (``ClipAudio`` or one embedded video), or None without audio.
        labels: ``(N,)`` class index per row; ``video_ids``: per row.
        grid: crops x clips; for an audio-only model only its clips matter.
        audio_tokens: add the window's ``audio_tokens``, ``audio_token_valid`` and
            ``audio_token_energy`` (models that read them: AVT).
        audio_rows: ``(N,)`` the row whose audio each row's views carry (another video's, to
            score a matching head on mismatched pairs); None: every row its own.
    """

    def __init__(
        self,
        clips,
        audio,
        labels: np.ndarray,
        video_ids: list[str],
        grid: ViewGrid,
        audio_tokens: bool = False,
        audio_rows: np.ndarray | None = None,
    ):
        self.clips, self.audio, self.labels, self.video_ids, self.grid = clips, audio, labels, video_ids, grid
        self.audio_tokens = audio_tokens and audio is not None
        self.audio_rows = audio_rows

    def __len__(self) -> int:
        return len(self.labels) * self.grid.count

    def __getitem__(self, item: int) -> dict:
        import torch

        row, view = divmod(item, self.grid.count)
        clip_index, crop_index = divmod(view, self.grid.spatial_crops)
        if self.clips is not None:
            out = self.clips[item]  # same row-major (row, clip, crop) order
        else:
            out = {
                "label": int(self.labels[row]),
                "index": row,
                "video_id": self.video_ids[row],
                "clip_index": clip_index,
                "crop_index": crop_index,
            }
        if self.audio is not None:
            source = row if self.audio_rows is None else int(self.audio_rows[row])
            window = clip_index * self.audio.num_windows // self.grid.temporal_clips
            out["audio"] = torch.from_numpy(np.asarray(self.audio.embedding(source, window), dtype=np.float32))
            out["audio_present"] = bool(self.audio.present[source, window])
            if self.audio.target is not None:
                out["relevance"] = float(self.audio.target[source, window])
            if self.audio_tokens:
                from avlabel.train.items import token_item

                out.update(token_item(self.audio, source, window))
        return out


def collate_views(items: list[dict]) -> dict:
    """``collate_clips`` plus the audio fields; unreadable views are dropped and listed in ``skipped``."""
    import torch

    from avlabel.data.dataset import collate_clips
    from avlabel.train.items import TOKEN_KEYS

    batch = collate_clips(items)
    good = [item for item in items if "error" not in item]
    for key in ("audio", *TOKEN_KEYS):
        if good and key in good[0]:
            batch[key] = torch.stack([item[key] for item in good])
    if good and "audio" in good[0]:
        batch["audio_present"] = torch.tensor([item["audio_present"] for item in good], dtype=torch.bool)
        if "relevance" in good[0]:
            batch["relevance"] = torch.tensor([item["relevance"] for item in good], dtype=torch.float32)
    return batch


def _loader(items: ViewItems, batch_size: int, workers: int, device: torch.device):
    from torch.utils.data import DataLoader

    return DataLoader(
        items,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_views,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


def run_model(
    loaded: LoadedRun,
    items: ViewItems,
    grid: ViewGrid,
    device: torch.device,
    batch_size: int,
    workers: int,
    progress: bool,
    description: str,
) -> tuple[MultiViewResult, list[tuple[int, str, str]]]:
    """All views through the model; returns per-video averages and the skipped ``(row, video_id, error)``."""
    from avlabel._progress import progress_bar
    from avlabel.evaluate.multiview import MultiViewAccumulator, run_views
    from avlabel.models.inputs import model_inputs

    skipped: list[tuple[int, str, str]] = []
    accumulator = MultiViewAccumulator(len(items.labels), len(loaded.classes), grid, device)
    with progress_bar(description, total=len(items), disable=not progress) as bar:

        def on_batch(batch: dict) -> None:
            skipped.extend(batch["skipped"])
            bar.advance(len(batch["index"]) + len(batch["skipped"]))

        result = run_views(
            loaded.model,
            _loader(items, batch_size, workers, device),
            accumulator,
            functools.partial(model_inputs, device=device, audio_input=loaded.model_config.audio_input),
            on_batch,
        )
    return result, skipped
