"""Test items of `avlabel eval`: each view gets the audio window under its clip; bad views are dropped."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avlabel.evaluate.multiview import ViewGrid
from avlabel.evaluate.views import ViewItems, collate_views


class _WindowAudio:
    """Audio whose embedding names its (row, window); window 1 of row 0 is silent."""

    num_windows = 4

    def __init__(self, rows: int):
        self.present = np.ones((rows, self.num_windows), dtype=bool)
        self.present[0, 1] = False
        self.target = np.arange(rows * self.num_windows, dtype=np.float32).reshape(rows, self.num_windows) / 10

    def embedding(self, row: int, window: int) -> np.ndarray:
        return np.array([row, window], dtype=np.float32)

    def tokens(self, row: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """3 tokens naming (row, window); the first ``window`` of them valid."""
        return (
            np.tile(np.array([row, window], dtype=np.float32), (3, 1)),
            np.arange(3) < window,
            np.full(3, row + window / 10, dtype=np.float32),
        )


class _Clips:
    """A test-mode clip dataset stand-in: items in (row, clip, crop) order, one unreadable row."""

    def __init__(self, rows: int, grid: ViewGrid, bad_row: int | None = None):
        self.rows, self.grid, self.bad_row = rows, grid, bad_row

    def __getitem__(self, item: int) -> dict:
        row, view = divmod(item, self.grid.count)
        clip, crop = divmod(view, self.grid.spatial_crops)
        base = {"index": row, "video_id": f"v{row}", "clip_index": clip, "crop_index": crop}
        if row == self.bad_row:
            return {**base, "error": "cannot decode"}
        return {**base, "label": row % 2, "rgb": torch.full((3, 2, 4, 4), float(item))}


def test_each_clip_gets_the_audio_window_under_it():
    grid = ViewGrid(spatial_crops=3, temporal_clips=2)
    items = ViewItems(_Clips(2, grid), _WindowAudio(2), np.array([0, 1]), ["v0", "v1"], grid)
    assert len(items) == 2 * 6
    seen = [
        (item["index"], item["clip_index"], item["crop_index"], tuple(item["audio"].tolist()))
        for item in map(items.__getitem__, range(12))
    ]
    # 2 clips over 4 windows: clip 0 -> window 0, clip 1 -> window 2 (clip * W // clips).
    for row, clip, _crop, (audio_row, window) in seen:
        assert audio_row == row and window == clip * 4 // 2
    assert sorted({(r, c, s) for r, c, s, _ in seen}) == [
        (r, c, s) for r in range(2) for c in range(2) for s in range(3)
    ]
    assert items[0]["relevance"] == np.float32(0.0) and items[3]["relevance"] == np.float32(0.2)


def test_audio_only_items_cover_the_clips_without_crops():
    grid = ViewGrid(spatial_crops=1, temporal_clips=4)
    items = ViewItems(None, _WindowAudio(2), np.array([1, 0]), ["a", "b"], grid)
    windows = [(items[i]["index"], items[i]["clip_index"], int(items[i]["audio"][1])) for i in range(len(items))]
    assert windows == [(row, clip, clip) for row in range(2) for clip in range(4)]
    assert items[1]["audio_present"] is False and items[5]["audio_present"] is True
    assert items[4]["label"] == 0 and items[4]["video_id"] == "b"


def test_collate_drops_unreadable_views_and_keeps_audio_aligned():
    grid = ViewGrid(spatial_crops=1, temporal_clips=2)
    items = ViewItems(_Clips(3, grid, bad_row=1), _WindowAudio(3), np.array([0, 1, 0]), ["v0", "v1", "v2"], grid)
    batch = collate_views([items[i] for i in range(len(items))])
    assert batch["index"].tolist() == [0, 0, 2, 2]
    assert [entry[1] for entry in batch["skipped"]] == ["v1", "v1"]
    # Audio rows line up with the surviving clips: row 2's embedding follows row 0's.
    assert batch["audio"][:, 0].tolist() == [0.0, 0.0, 2.0, 2.0]
    assert batch["audio_present"].tolist() == [True, True, True, True]
    assert batch["rgb"].shape == (4, 3, 2, 4, 4) and batch["relevance"].shape == (4,)


def test_token_views_carry_the_tokens_of_their_window_and_only_when_asked():
    grid = ViewGrid(spatial_crops=1, temporal_clips=2)
    audio = _WindowAudio(3)
    plain = ViewItems(_Clips(3, grid, bad_row=1), audio, np.array([0, 1, 0]), ["v0", "v1", "v2"], grid)
    assert "audio_tokens" not in plain[0] and "audio_tokens" not in collate_views([plain[0], plain[1]])
    items = ViewItems(
        _Clips(3, grid, bad_row=1), audio, np.array([0, 1, 0]), ["v0", "v1", "v2"], grid, audio_tokens=True
    )
    batch = collate_views([items[i] for i in range(len(items))])
    # Rows 0 and 2 survive; clip c of 2 takes window c * 4 // 2, as the embedding does.
    assert batch["audio_tokens"].shape == (4, 3, 2) and batch["audio_tokens"].dtype == torch.float32
    assert batch["audio_tokens"][:, 0].tolist() == [[0.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 2.0]]
    assert torch.equal(batch["audio_tokens"][:, 0], batch["audio"])
    assert batch["audio_token_valid"].tolist() == [[False] * 3, [True, True, False]] * 2
    assert batch["audio_token_energy"][:, 0].tolist() == pytest.approx([0.0, 0.2, 2.0, 2.2])


def test_mismatched_audio_pairs_every_video_with_audio_with_another_ones():
    from avlabel.evaluate.evaluation import mismatched_audio

    has_audio = np.array([True, False, True, True, True, False])
    partners = mismatched_audio(has_audio)
    audible = np.flatnonzero(has_audio)
    assert (partners[audible] != audible).all() and sorted(partners[audible]) == list(audible)
    assert (partners[~has_audio] == np.flatnonzero(~has_audio)).all()
    assert (mismatched_audio(has_audio) == partners).all()  # fixed: every evaluation pairs alike
    assert mismatched_audio(np.array([False, True]))[1] == 1  # one video with audio: nothing to pair it with
