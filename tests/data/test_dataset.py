"""VideoClipDataset: items, clip sampling through the real decoder, views, flow, and skipped items."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avlabel.data.dataset import VideoClipDataset, collate_clips
from avlabel.data.flow_extract import FlowConfig, run_flow
from avlabel.data.manifest import ClipRecord, Manifest
from avlabel.data.writer import write_clip
from avlabel.errors import AvlabelError
from avlabel.labels import load_label_set
from avlabel.models.config import IMAGENET_MEAN, IMAGENET_STD

KINETICS = load_label_set("kinetics400")
# ImageNet statistics: frame_index_of below undoes them (any model's statistics would do).
RGB = {"rgb_mean": IMAGENET_MEAN, "rgb_std": IMAGENET_STD}


def brightness_frames(num_frames: int, height=48, width=64) -> np.ndarray:
    """Frame i is uniformly grey at level 4 * i: its index survives crops, resizes and coding."""
    levels = (4 * np.arange(num_frames)).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)).copy()


def frame_index_of(rgb: torch.Tensor) -> list[int]:
    """Undo the ImageNet normalisation of a (3, T, H, W) clip and read each frame's index."""
    std, mean = torch.tensor(IMAGENET_STD).view(3, 1), torch.tensor(IMAGENET_MEAN).view(3, 1)
    pixels = (rgb.flatten(2).mean(-1) * std + mean) * 255  # (3, T)
    return torch.round(pixels.mean(0) / 4).long().tolist()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    moving = np.zeros((30, 48, 64, 3), dtype=np.uint8)
    # A textured block moving 1 px/frame to the right: texture lets optical flow see the motion
    # inside the block too, not only at its edges (a flat block's inside is ambiguous).
    texture = np.random.default_rng(0).integers(120, 256, (28, 16, 1), dtype=np.uint8)
    for t in range(30):
        moving[t, :, :] = 60
        moving[t, 10:38, 8 + t : 24 + t] = texture
    broken = root / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    records = [
        ClipRecord("grey60", write_clip(root / "grey60.mp4", brightness_frames(60), fps=25), "whistling", "train"),
        ClipRecord("grey40", write_clip(root / "grey40.webm", brightness_frames(40), fps=30), "applauding", "train"),
        ClipRecord("window", root / "grey60.mp4", "whistling", "train", start=1.0, end=2.0),
        ClipRecord("short", write_clip(root / "short.mkv", brightness_frames(5), fps=25), "applauding", "train"),
        ClipRecord("moving", write_clip(root / "moving.mp4", moving, fps=25), "whistling", "train"),
        ClipRecord("broken", broken, "whistling", "train"),
        ClipRecord(
            "soundonly", write_clip(root / "sound.m4a", None, audio=np.zeros(8000, np.float32)), "applauding", "train"
        ),
    ]
    return Manifest(records, root / "manifest.csv")


def _by_id(manifest, *video_ids):
    return Manifest([record for record in manifest if record.video_id in video_ids], manifest.path)


def test_train_item_layout_and_sampling(clips):
    dataset = VideoClipDataset(
        _by_id(clips, "grey60"), KINETICS, modalities=("rgb",), num_frames=8, stride=4, size=32, **RGB
    )
    torch.manual_seed(0)
    item = dataset[0]
    assert set(item) == {"rgb", "label", "index", "video_id", "clip_index", "crop_index"}
    assert item["rgb"].shape == (3, 8, 32, 32) and item["rgb"].dtype == torch.float32
    assert (item["label"], item["index"], item["video_id"]) == (KINETICS.index("whistling"), 0, "grey60")
    starts = set()
    for _ in range(40):
        indices = frame_index_of(dataset[0]["rgb"])
        assert np.diff(indices).tolist() == [4] * 7
        starts.add(indices[0])
    assert min(starts) >= 0 and max(starts) <= 60 - 29 and len(starts) > 10


def test_window_short_clip_and_other_frame_rates(clips):
    dataset = VideoClipDataset(
        _by_id(clips, "grey40", "window", "short"),
        KINETICS,
        modalities=("rgb",),
        **RGB,
        num_frames=4,
        stride=3,
        size=16,
    )
    for _ in range(10):
        grey40, window, short = (frame_index_of(dataset[i]["rgb"]) for i in range(3))
        assert grey40[0] >= 0 and grey40[-1] <= 39
        assert window[0] >= 25 and window[-1] < 50  # [1 s, 2 s) at 25 fps
        assert short == [0, 3, 4, 4]  # a 5-frame clip repeats its last frame


def test_test_mode_views_are_uniform_clips_times_three_crops(clips):
    dataset = VideoClipDataset(
        _by_id(clips, "grey60", "grey40"),
        KINETICS,
        mode="test",
        modalities=("rgb",),
        **RGB,
        num_frames=4,
        stride=8,
        num_clips=4,
        num_crops=3,
        size=16,
    )
    assert len(dataset) == 2 * 4 * 3
    items = [dataset[i] for i in range(12)]
    assert [(item["clip_index"], item["crop_index"]) for item in items] == [(c, k) for c in range(4) for k in range(3)]
    starts = [frame_index_of(items[3 * clip]["rgb"])[0] for clip in range(4)]
    assert starts == [4, 13, 22, 31]  # offsets 0..35 in 4 shares of 9, each clip mid-share
    left, centre, right = (items[k]["rgb"] for k in range(3))
    assert left.shape == (3, 4, 16, 16)
    assert dataset[12]["video_id"] == "grey40"


def test_flow_from_a_folder_and_on_the_fly_agree_and_flip_negates_x(clips, tmp_path):
    moving = _by_id(clips, "moving")
    run_flow(moving, tmp_path / "flow", FlowConfig())
    common = {"num_frames": 4, "stride": 4, "size": 32, **RGB}
    stored = VideoClipDataset(moving, KINETICS, mode="test", num_crops=1, flow_dir=tmp_path / "flow", **common)
    on_the_fly = VideoClipDataset(moving, KINETICS, mode="test", num_crops=1, flow_on_the_fly=True, **common)
    a, b = stored[0], on_the_fly[0]
    assert a["flow"].shape == (2, 4, 32, 32) and a["rgb"].shape == (3, 4, 32, 32)
    torch.testing.assert_close(a["flow"], b["flow"], atol=0.05, rtol=0)
    # The block moves right by 1 px/frame; resizing the 48x48 centre crop to 32 scales that by 2/3.
    native = VideoClipDataset(
        moving, KINETICS, mode="test", num_crops=1, flow_dir=tmp_path / "flow", **{**common, "size": 48}
    )
    native_x, flow_x = native[0]["flow"][0] * 20, a["flow"][0] * 20
    assert native_x[native_x.abs() > 0.45].median() > 0.75  # DIS sees (most of) the 1 px motion
    # Plain floats: pytest >= 9.2's approx iterates over a tensor expected value (a 0-d one fails).
    assert float(flow_x[flow_x.abs() > 0.3].median()) == pytest.approx(
        2 / 3 * float(native_x[native_x.abs() > 0.45].median()), rel=0.1
    )
    train = VideoClipDataset(moving, KINETICS, flow_dir=tmp_path / "flow", scale=(0.9, 1.0), **common)
    signs = {int(torch.sign(train[0]["flow"][0].sum())) for _ in range(30)}
    assert signs == {-1, 1}  # flipped items move left


def test_bad_files_are_skipped_and_counted_across_workers(clips, tmp_path):
    log = tmp_path / "skipped.log"
    dataset = VideoClipDataset(
        clips, KINETICS, modalities=("rgb",), num_frames=4, stride=2, size=16, error_log=log, **RGB
    )
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=collate_clips)
    seen, skipped = [], []
    for batch in loader:
        seen += batch["video_id"]
        skipped += batch["skipped"]
        if len(batch["index"]):
            assert batch["rgb"].shape == (len(batch["index"]), 3, 4, 16, 16)
    assert sorted(seen) == ["grey40", "grey60", "moving", "short", "window"]
    assert sorted(video_id for _, video_id, _ in skipped) == ["broken", "soundonly"]
    assert any("no video stream" in error for *_, error in skipped)
    assert sorted(line.split("\t")[1] for line in log.read_text().splitlines()) == ["broken", "soundonly"]


def test_collate_of_an_all_bad_batch_is_empty():
    batch = collate_clips([{"error": "x", "index": 3, "video_id": "v", "clip_index": 0, "crop_index": 0}])
    assert len(batch["index"]) == 0 and "rgb" not in batch and batch["skipped"] == [(3, "v", "x")]


def test_configuration_errors(clips, tmp_path):
    grey = _by_id(clips, "grey60")
    with pytest.raises(AvlabelError, match="flow_dir"):
        VideoClipDataset(grey, KINETICS, **RGB)
    run_flow(_by_id(clips, "moving"), tmp_path / "flow", FlowConfig())
    with pytest.raises(AvlabelError, match="lacks flow for 1 of 1 videos"):
        VideoClipDataset(grey, KINETICS, flow_dir=tmp_path / "flow", **RGB)
    with pytest.raises(AvlabelError, match="unknown label"):
        VideoClipDataset(
            Manifest([ClipRecord("x", "x.mp4", "dancing badly", "train")]), KINETICS, modalities=("rgb",), **RGB
        )
    with pytest.raises(AvlabelError, match="num_crops"):
        VideoClipDataset(grey, KINETICS, modalities=("rgb",), num_crops=2, **RGB)
    with pytest.raises(AvlabelError, match="RGB clips need rgb_mean and rgb_std"):
        VideoClipDataset(grey, KINETICS, modalities=("rgb",))
