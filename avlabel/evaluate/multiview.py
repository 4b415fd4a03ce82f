"""Multi-view testing: several spatial crops x temporal clips per video, softmax averaged.

Paper section 4.1 tests each video on 3 spatial crops and 4 temporal clips and averages the
predictions. Here every view is one row of a batch (the test ``Dataset`` yields one item per
``(video, clip, crop)`` with ``index``, ``clip_index`` and ``crop_index``); the
`MultiViewAccumulator` sums each view's class probabilities into its video's row with one
``index_add_`` per batch, on the model's device and without host synchronisation, and records
which ``(clip, crop)`` cells were seen so that an incomplete view grid is reported instead of
silently averaged. The relevance score and the keep decision (Eqs. 4-5) are averaged the same way.

A model that exposes contrastive embeddings (AVT) has them averaged per video too -- the video
embedding over every view, the audio embedding over the views whose window has audio, each
L2-normalised again -- and a model with a matching head its probability that each view's
video and audio belong together, over the views with audio.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from avlabel.errors import AvlabelError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ViewGrid:
    """How many spatial crops and temporal clips are taken from each test video."""

    spatial_crops: int = 3  # left/centre/right (or top/centre/bottom) crops of the short-side resize
    temporal_clips: int = 4  # uniformly spaced clips over the video

    @classmethod
    def parse(cls, text: str) -> ViewGrid:
        """Parse ``"CxT"`` (crops x clips), e.g. ``"3x4"``; ``"1x1"`` is single-view testing."""
        match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
        if not match or int(match[1]) < 1 or int(match[2]) < 1:
            raise AvlabelError(
                f"--views {text!r} is not CROPSxCLIPS with positive numbers; use e.g. 3x4 (3 spatial crops x 4 clips) or 1x1"
            )
        return cls(spatial_crops=int(match[1]), temporal_clips=int(match[2]))

    @property
    def count(self) -> int:
        return self.spatial_crops * self.temporal_clips

    def __str__(self) -> str:
        return f"{self.spatial_crops}x{self.temporal_clips}"


@dataclass
class MultiViewResult:
    """Per-video results averaged over views (NumPy arrays; rows follow the dataset's video order).

    Relevance fields average over the views whose clip has audible audio only: without audio the
    model drops the audio whatever the relevance network says, so those views say nothing about it.
    """

    probabilities: np.ndarray  # (N, C) mean softmax over the views seen; NaN rows for unseen videos
    views_seen: np.ndarray  # (N, clips, crops) int: how often each view was seen (1 when complete)
    audio_views: np.ndarray | None  # (N,) views with audible audio, or None for models without IMD
    relevance: np.ndarray | None  # (N,) mean relevance score rev; NaN for videos without audio
    keep_fraction: np.ndarray | None  # (N,) fraction of audible views whose audio was kept
    relevance_target: np.ndarray | None  # (N,) mean relevance target, when targets were given
    video_embedding: np.ndarray | None = None  # (N, E) mean contrastive video embedding, re-normalised
    audio_embedding: np.ndarray | None = None  # (N, E) the same over views with audio; NaN rows without audio
    match_probability: np.ndarray | None = None  # (N,) mean matching probability over views with audio

    @property
    def evaluated(self) -> np.ndarray:
        """(N,) bool: videos with at least one view."""
        return self.views_seen.sum(axis=(1, 2)) > 0

    @property
    def complete(self) -> np.ndarray:
        """(N,) bool: videos whose every (clip, crop) view was seen exactly once."""
        return (self.views_seen == 1).all(axis=(1, 2))


class MultiViewAccumulator:
    """Accumulates per-view outputs into per-video averages on the outputs' device.

    Args:
        num_videos: number of videos (rows) in the evaluated split.
        num_classes: number of classes of the model.
        grid: the view grid the dataset was built with.
        device: where the running sums live (the model's device).
    """

    def __init__(self, num_videos: int, num_classes: int, grid: ViewGrid, device: torch.device | str = "cpu"):
        import torch

        self.grid = grid
        self._prob_sum = torch.zeros(num_videos, num_classes, dtype=torch.float64, device=device)
        self._views = torch.zeros(num_videos, grid.temporal_clips, grid.spatial_crops, dtype=torch.int64, device=device)
        # rows: audible views, rev, kept, target (sums over audible views); created on first use
        self._relevance_sums: torch.Tensor | None = None
        self._has_target = False
        # video / audio embedding sums, (audible views, match probability) sums; created on first use
        self._embedding_sums: tuple[torch.Tensor, torch.Tensor] | None = None
        self._audio_sums: torch.Tensor | None = None
        self._has_match = False  # a matching head: the embeddings alone also fill _audio_sums

    def add(
        self,
        index: torch.Tensor,
        clip_index: torch.Tensor,
        crop_index: torch.Tensor,
        logits: torch.Tensor,
        rev: torch.Tensor | None = None,
        keep: torch.Tensor | None = None,
        audio_present: torch.Tensor | None = None,
        relevance_target: torch.Tensor | None = None,
        embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        match_probability: torch.Tensor | None = None,
    ) -> None:
        """Add one batch of views.

        Args:
            index, clip_index, crop_index: ``(B,)`` video row and view cell of each view.
            logits: ``(B, C)`` class logits.
            rev, keep: ``(B,)`` relevance score and keep decision (Eqs. 4-5), when the model has IMD.
            audio_present: ``(B,)`` bool, the view's audio window is audible (None: all are).
            relevance_target: ``(B,)`` relevance targets (section 3.5), when known.
            embeddings: ``(B, E)`` video and audio contrastive embeddings, when the model has them.
            match_probability: ``(B,)`` the matching head's probability that the view's video and
                audio belong together, when the model has one.
        """
        import torch

        device = self._prob_sum.device
        index = index.to(device, torch.int64)
        probabilities = torch.softmax(logits.detach().to(device, torch.float64), dim=-1)  # (B, C)
        self._prob_sum.index_add_(0, index, probabilities)
        cell = (index, clip_index.to(device, torch.int64), crop_index.to(device, torch.int64))
        self._views.index_put_(cell, torch.ones_like(index), accumulate=True)
        present = (
            torch.ones_like(index, dtype=torch.bool) if audio_present is None else audio_present.to(device, torch.bool)
        )
        self._add_audio_video(index, present, embeddings, match_probability)
        if rev is None:
            return
        if self._relevance_sums is None:
            self._relevance_sums = torch.zeros(4, len(self._prob_sum), dtype=torch.float64, device=device)
        kept = present if keep is None else keep.to(device, torch.bool) & present
        target = (
            torch.zeros_like(index, dtype=torch.float64) if relevance_target is None else relevance_target.to(device)
        )
        self._has_target |= relevance_target is not None
        rev = rev.detach().to(device, torch.float64)
        values = torch.stack([present.double(), rev * present, kept.double(), target.double() * present])  # (4, B)
        self._relevance_sums.index_add_(1, index, values)

    def _add_audio_video(
        self,
        index: torch.Tensor,
        present: torch.Tensor,
        embeddings: tuple[torch.Tensor, torch.Tensor] | None,
        match_probability: torch.Tensor | None,
    ) -> None:
        """Sum the contrastive embeddings and matching probabilities of a batch into their videos."""
        import torch

        device, videos = self._prob_sum.device, len(self._prob_sum)
        if embeddings is not None:
            video, audio = (e.detach().to(device, torch.float64) for e in embeddings)
            if self._embedding_sums is None:
                self._embedding_sums = (
                    torch.zeros(videos, video.shape[1], dtype=torch.float64, device=device),
                    torch.zeros(videos, audio.shape[1], dtype=torch.float64, device=device),
                )
            self._embedding_sums[0].index_add_(0, index, video)
            self._embedding_sums[1].index_add_(0, index, audio * present[:, None])
        if embeddings is not None or match_probability is not None:
            if self._audio_sums is None:
                self._audio_sums = torch.zeros(2, videos, dtype=torch.float64, device=device)
            match = torch.zeros_like(present, dtype=torch.float64)
            self._has_match |= match_probability is not None
            if match_probability is not None:
                match = match_probability.detach().to(device, torch.float64) * present
            self._audio_sums.index_add_(1, index, torch.stack([present.double(), match]))

    def result(self) -> MultiViewResult:
        """Per-video averages (one host transfer at the end of evaluation)."""
        views = self._views.cpu().numpy()
        count = views.sum(axis=(1, 2)).astype(np.float64)
        audio_views = relevance = keep = target = None
        with np.errstate(invalid="ignore", divide="ignore"):
            probabilities = self._prob_sum.cpu().numpy() / count[:, None]
            if self._relevance_sums is not None:
                audible, rev_sum, kept_sum, target_sum = self._relevance_sums.cpu().numpy()
                audio_views = audible.astype(np.int64)
                relevance, keep = rev_sum / audible, kept_sum / audible
                target = target_sum / audible if self._has_target else None
            video_embedding = audio_embedding = match = None
            if self._audio_sums is not None:
                audible, match_sum = self._audio_sums.cpu().numpy()
                match = match_sum / audible if self._has_match else None
            if self._embedding_sums is not None:
                video_sum, audio_sum = (sums.cpu().numpy() for sums in self._embedding_sums)
                video_embedding = _normalised(video_sum)
                audio_embedding = np.where(audible[:, None] > 0, _normalised(audio_sum), np.nan)
        return MultiViewResult(
            probabilities, views, audio_views, relevance, keep, target, video_embedding, audio_embedding, match
        )


def _normalised(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (NaN for all-zero rows: videos never seen)."""
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def run_views(
    model: torch.nn.Module,
    batches: Iterable[dict],
    accumulator: MultiViewAccumulator,
    model_inputs: Callable[[dict], dict],
    on_batch: Callable[[dict], None] | None = None,
) -> MultiViewResult:
    """Run ``model`` over every view in ``batches`` and return the per-video averages.

    Args:
        model: a model returning ``FusionOutput`` (``logits``; ``rev``/``keep``, ``embeddings`` and
            ``matching`` when it has them).
        batches: dicts with ``index``, ``clip_index``, ``crop_index`` (B,) plus the model's inputs;
            ``audio_present`` and ``relevance`` (targets) are used when present.
        accumulator: receives each batch's outputs.
        model_inputs: maps a batch to the model's keyword arguments, already on the model's device.
        on_batch: called with each batch after it ran (progress bars, counting skipped views).
    """
    import torch

    model.eval()
    device_type = next(model.parameters()).device.type
    with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=device_type == "cuda"):
        for batch in batches:
            if len(batch["index"]) == 0:  # every view of the batch was unreadable
                if on_batch is not None:
                    on_batch(batch)
                continue
            output = model(**model_inputs(batch))
            embeddings = (output.embeddings.video, output.embeddings.audio) if output.embeddings is not None else None
            # The matching head scores each view's own pair in evaluation (FusionOutput.matching).
            match = torch.softmax(output.matching.logits.float(), dim=-1)[:, 1] if output.matching is not None else None
            accumulator.add(
                batch["index"],
                batch["clip_index"],
                batch["crop_index"],
                output.logits,
                output.rev,
                output.keep,
                batch.get("audio_present"),
                batch.get("relevance"),
                embeddings,
                match,
            )
            if on_batch is not None:
                on_batch(batch)
    return accumulator.result()
