"""Multi-view testing: every (clip, crop) view is covered and softmax outputs are averaged per video.

The model here is a test double whose logits are a known function of the view it is shown, so
the expected per-video average can be computed independently.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from avlabel.errors import AvlabelError
from avlabel.evaluate.multiview import MultiViewAccumulator, ViewGrid, run_views
from avlabel.models.outputs import FusionOutput

NUM_CLASSES = 5


def _view_logits(video: int, clip: int, crop: int) -> np.ndarray:
    """Known logits for one view: they differ across videos, clips and crops."""
    return np.array([video, clip, crop, video * clip - crop, 0.5 * (clip + crop)], dtype=np.float64)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _expected_mean(video: int, grid: ViewGrid) -> np.ndarray:
    cells = itertools.product(range(grid.temporal_clips), range(grid.spatial_crops))
    return np.mean([_softmax(_view_logits(video, clip, crop)) for clip, crop in cells], axis=0)


def test_view_grid_parse():
    assert ViewGrid.parse("3x4") == ViewGrid(spatial_crops=3, temporal_clips=4)
    assert ViewGrid.parse("1X1").count == 1
    assert str(ViewGrid.parse(" 2 x 5 ")) == "2x5"
    for bad in ("3", "0x4", "3x", "axb", "3x4x2"):
        with pytest.raises(AvlabelError, match="CROPSxCLIPS"):
            ViewGrid.parse(bad)


class _ViewEchoModel(torch.nn.Module):
    """Reads (video, clip, crop) from the first pixels of its RGB input and returns known logits."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the model a device

    def forward(self, rgb, flow=None, audio=None, audio_present=None):
        video, clip, crop = rgb[:, 0, 0, 0, 0], rgb[:, 1, 0, 0, 0], rgb[:, 2, 0, 0, 0]
        logits = torch.stack([video, clip, crop, video * clip - crop, 0.5 * (clip + crop)], dim=1)
        rev = torch.sigmoid(clip - 1.5)  # per view; only clip 0 falls below alpha=0.25 (sigmoid(-1.5)=0.18)
        keep = rev >= 0.25
        return FusionOutput(logits=logits + self.anchor, rev=rev, keep=keep)


def _view_batches(num_videos: int, grid: ViewGrid, batch_size: int, seed: int = 0):
    """Every view of every video once, in shuffled order, as dataset-style batches."""
    cells = list(itertools.product(range(num_videos), range(grid.temporal_clips), range(grid.spatial_crops)))
    order = np.random.default_rng(seed).permutation(len(cells))
    for start in range(0, len(cells), batch_size):
        chosen = [cells[i] for i in order[start : start + batch_size]]
        ids = torch.tensor(chosen, dtype=torch.float32)  # (B, 3): video, clip, crop
        rgb = ids[:, :, None, None, None].expand(-1, -1, 2, 4, 4).clone()  # (B, 3, T, H, W)
        yield {
            "rgb": rgb,
            "index": torch.tensor([c[0] for c in chosen]),
            "clip_index": torch.tensor([c[1] for c in chosen]),
            "crop_index": torch.tensor([c[2] for c in chosen]),
            "audio_present": torch.tensor([c[2] != 1 for c in chosen]),  # crop 1 views: "silent window"
            "relevance": torch.tensor([c[1] / 10 for c in chosen]),
        }


@pytest.mark.parametrize("grid", [ViewGrid(3, 4), ViewGrid(1, 1), ViewGrid(2, 3)])
def test_run_views_averages_softmax_over_every_view(grid):
    num_videos = 4
    accumulator = MultiViewAccumulator(num_videos, NUM_CLASSES, grid)
    result = run_views(
        _ViewEchoModel(), _view_batches(num_videos, grid, batch_size=5), accumulator, lambda b: {"rgb": b["rgb"]}
    )
    assert result.complete.all() and result.views_seen.shape == (num_videos, grid.temporal_clips, grid.spatial_crops)
    for video in range(num_videos):
        np.testing.assert_allclose(result.probabilities[video], _expected_mean(video, grid), rtol=1e-6)
    # Averaging probabilities is not averaging logits: check the test can tell them apart.
    if grid.count > 1:
        mean_logits = np.mean(
            [_view_logits(1, c, s) for c in range(grid.temporal_clips) for s in range(grid.spatial_crops)], axis=0
        )
        assert not np.allclose(result.probabilities[1], _softmax(mean_logits))
    # Relevance averages over the audible views only (crop 1 is silent when there are 2+ crops).
    clips = np.arange(grid.temporal_clips)
    audible_crops = [crop for crop in range(grid.spatial_crops) if crop != 1]
    np.testing.assert_array_equal(result.audio_views, len(clips) * len(audible_crops))
    expected_rev = (1 / (1 + np.exp(-(clips - 1.5)))).mean()
    np.testing.assert_allclose(result.relevance, expected_rev, rtol=1e-6)
    np.testing.assert_allclose(result.keep_fraction, (clips >= 1).mean())
    np.testing.assert_allclose(result.relevance_target, clips.mean() / 10, rtol=1e-6)


def test_incomplete_and_duplicated_views_are_flagged():
    grid = ViewGrid(3, 4)
    accumulator = MultiViewAccumulator(3, NUM_CLASSES, grid)
    logits = torch.zeros(1, NUM_CLASSES)
    for clip, crop in itertools.product(range(4), range(3)):
        accumulator.add(torch.tensor([0]), torch.tensor([clip]), torch.tensor([crop]), logits)
        if (clip, crop) != (3, 2):  # video 1 misses its last view
            accumulator.add(torch.tensor([1]), torch.tensor([clip]), torch.tensor([crop]), logits)
    accumulator.add(torch.tensor([0]), torch.tensor([0]), torch.tensor([0]), logits)  # video 0: one view twice
    result = accumulator.result()
    assert result.complete.tolist() == [False, False, False]
    assert result.evaluated.tolist() == [True, True, False]  # video 2 never seen (e.g. undecodable)
    assert np.isnan(result.probabilities[2]).all()
    np.testing.assert_allclose(result.probabilities[1], np.full(NUM_CLASSES, 1 / NUM_CLASSES))
    assert result.relevance is None and result.keep_fraction is None and result.audio_views is None


def test_embeddings_and_matching_are_averaged_per_video_over_the_right_views():
    grid = ViewGrid(spatial_crops=1, temporal_clips=3)
    accumulator = MultiViewAccumulator(num_videos=2, num_classes=2, grid=grid)
    video = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]) / torch.tensor([[1.0], [1.0], [2**0.5]])
    audio = torch.tensor([[0.0, 1.0], [1.0, 0.0], [float("nan"), 0.0]])  # view 2 has no audio (whatever it holds)
    accumulator.add(
        index=torch.tensor([0, 0, 0]),
        clip_index=torch.tensor([0, 1, 2]),
        crop_index=torch.zeros(3, dtype=torch.long),
        logits=torch.zeros(3, 2),
        audio_present=torch.tensor([True, True, False]),
        embeddings=(video, torch.nan_to_num(audio)),
        match_probability=torch.tensor([0.8, 0.4, 0.99]),
    )
    result = accumulator.result()
    expected_video = video.sum(0) / video.sum(0).norm()
    np.testing.assert_allclose(result.video_embedding[0], expected_video.numpy(), rtol=1e-6)
    np.testing.assert_allclose(result.audio_embedding[0], np.array([1.0, 1.0]) / 2**0.5, rtol=1e-6)
    assert result.match_probability[0] == pytest.approx(0.6)  # the view without audio is left out
    assert np.isnan(result.video_embedding[1]).all() and np.isnan(result.match_probability[1])


def test_a_model_with_embeddings_but_no_matching_head_has_no_matching_probability():
    # AVT trained without the matching loss has no matching head: eval must not score one.
    accumulator = MultiViewAccumulator(num_videos=1, num_classes=2, grid=ViewGrid(spatial_crops=1, temporal_clips=1))
    embedding = torch.tensor([[1.0, 0.0]])
    accumulator.add(
        index=torch.tensor([0]),
        clip_index=torch.tensor([0]),
        crop_index=torch.tensor([0]),
        logits=torch.zeros(1, 2),
        embeddings=(embedding, embedding),
    )
    result = accumulator.result()
    assert result.match_probability is None and result.audio_embedding is not None
