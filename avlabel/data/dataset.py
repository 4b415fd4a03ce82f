"""The PyTorch dataset of RGB and optical-flow clips, and the collate function that skips bad items.

Items. ``VideoClipDataset(manifest, label_set, mode=...)[i]`` is a dict:

==============  ==================================================================================
``rgb``         ``(3, T, H, W)`` float32, ``(pixel / 255 - rgb_mean) / rgb_std`` (absent if "rgb" not
                in modalities)
``flow``        ``(2, T, H, W)`` float32: x, y displacement to the next frame, in output-grid
                pixels divided by 20 (the quantisation bound), so mostly within [-1, 1]
``label``       int, index of the clip's label in the `LabelSet`
``index``       int, row of the manifest the dataset was built on
``video_id``    str
``clip_index``  int, temporal clip (always 0 in train mode)
``crop_index``  int, spatial crop (always 0 in train mode)
==============  ==================================================================================

Train mode: one item per row, T frames at a fixed stride from a random offset, random-resized
crop and horizontal flip (flow x negated). Test mode: ``num_clips x num_crops`` items per row
(row-major: item ``(row * num_clips + clip) * num_crops + crop``), uniformly spaced clips and
three square crops; average a video's logits over its views. Randomness comes from torch's
generator, which ``DataLoader`` seeds per worker and epoch, so ``torch.manual_seed`` makes runs
repeatable and epochs still differ.

Bad items, and how they are counted across workers. A corrupt, truncated or video-less file (or
missing flow) raises `AvlabelError` inside ``__getitem__``, which catches it
and returns a *skip marker* ``{"error": message, "index", "video_id", "clip_index", "crop_index"}``
instead of crashing the worker (and appends a line to ``error_log`` when one is given). Use
`collate_clips` as the DataLoader's ``collate_fn``: it drops markers and reports them in
``batch["skipped"]`` (a list of ``(index, video_id, error)``), so the main process can count them
whatever worker they came from. A batch whose items were all bad has an empty ``batch["index"]``
and no ``rgb``/``flow``: skip it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from avlabel.data.decode import VideoReader
from avlabel.data.flow_estimators import flow_between
from avlabel.data.flow_format import FlowStore
from avlabel.data.manifest import ClipRecord, Manifest
from avlabel.data.sampling import sample_test_clips, sample_train_clip
from avlabel.data.transforms import CropBox, apply_view, random_resized_crop_box, three_crop_boxes
from avlabel.errors import AvlabelError

if TYPE_CHECKING:
    from avlabel.labels import LabelSet

MODALITIES = ("rgb", "flow")


class VideoClipDataset(Dataset):
    """RGB / flow clips of a manifest (see the module docstring for items and skipping).

    Args:
        manifest: the rows to serve (usually ``manifest.split("train")``).
        label_set: maps each row's label to its class index.
        mode: "train" (random clip, random crop + flip) or "test" (clips x crops views).
        modalities: any of "rgb", "flow".
        num_frames: T, frames per clip (paper: 8).
        stride: frames between sampled frames.
        sample_fps: measure ``stride`` at this frame rate for every file (None: each file's own).
        num_clips: temporal clips per video in test mode (paper: 4).
        num_crops: spatial crops per clip in test mode, 1 (centre) or 3 (paper: 3).
        size: output height and width.
        scale: area range of the training random-resized crop.
        flow_dir: a folder from ``avlabel flow`` or mmaction2 denseflow; must cover every row.
        flow_on_the_fly: compute flow (DIS) from decoded frames instead (small datasets only).
        decode_short_side: scale frames to this short side while decoding (speed for large
            videos; None keeps their size).
        error_log: file to which every skipped item appends a line ``index<TAB>video_id<TAB>error``.
        rgb_mean, rgb_std: per-channel RGB statistics the model's weights expect
            (``ModelConfig.rgb_mean`` / ``rgb_std``); required with "rgb".
    """

    def __init__(
        self,
        manifest: Manifest,
        label_set: LabelSet,
        *,
        mode: Literal["train", "test"] = "train",
        modalities: Sequence[str] = MODALITIES,
        num_frames: int = 8,
        stride: int = 8,
        sample_fps: float | None = None,
        num_clips: int = 4,
        num_crops: int = 3,
        size: int = 224,
        scale: tuple[float, float] = (0.25, 1.0),
        flow_dir: str | os.PathLike[str] | None = None,
        flow_on_the_fly: bool = False,
        decode_short_side: int | None = None,
        error_log: str | os.PathLike[str] | None = None,
        rgb_mean: Sequence[float] | None = None,
        rgb_std: Sequence[float] | None = None,
    ):
        if mode not in ("train", "test"):
            raise AvlabelError(f"dataset mode must be 'train' or 'test', got {mode!r}")
        unknown = [name for name in modalities if name not in MODALITIES]
        if unknown or not modalities:
            raise AvlabelError(f"modalities must be a non-empty subset of {MODALITIES}, got {tuple(modalities)}")
        if "rgb" in modalities and (rgb_mean is None or rgb_std is None):
            raise AvlabelError(
                "RGB clips need rgb_mean and rgb_std: the statistics the model's weights were trained with "
                "(ModelConfig.rgb_mean / rgb_std)"
            )
        if num_crops not in (1, 3):
            raise AvlabelError(f"num_crops must be 1 (centre) or 3 (left/centre/right), got {num_crops}")
        if len(manifest) == 0:
            raise AvlabelError("the manifest given to the dataset has no rows; check the split name")
        self.records: list[ClipRecord] = list(manifest)
        self.labels = np.array([label_set.index(record.label) for record in self.records], dtype=np.int64)
        self.mode = mode
        self.modalities = tuple(modalities)
        self.num_frames, self.stride, self.sample_fps = num_frames, stride, sample_fps
        self.num_clips = num_clips if mode == "test" else 1
        self.num_crops = num_crops if mode == "test" else 1
        self.size, self.scale = size, scale
        self.rgb_mean, self.rgb_std = rgb_mean, rgb_std
        self.decode_short_side = decode_short_side
        self.error_log = Path(error_log) if error_log is not None else None
        self.flow_store: FlowStore | None = None
        self.flow_on_the_fly = flow_on_the_fly
        if "flow" in self.modalities:
            if flow_dir is not None:
                self.flow_store = FlowStore(flow_dir)
                self.flow_store.check_covers(self.records, manifest.path)
            elif not flow_on_the_fly:
                raise AvlabelError("flow was requested: pass flow_dir (from `avlabel flow`) or flow_on_the_fly=True")
        self._cached_clip: tuple[tuple[int, int], dict] | None = None  # test mode: crops of one clip share decoding

    @property
    def views_per_video(self) -> int:
        return self.num_clips * self.num_crops

    def __len__(self) -> int:
        return len(self.records) * self.views_per_video

    def __getitem__(self, item: int) -> dict:
        row, view = divmod(item, self.views_per_video)
        clip_index, crop_index = divmod(view, self.num_crops)
        record = self.records[row]
        try:
            return self._load(row, record, clip_index, crop_index)
        except AvlabelError as error:
            self._log_skip(row, record, error)
            return {
                "error": str(error),
                "index": row,
                "video_id": record.video_id,
                "clip_index": clip_index,
                "crop_index": crop_index,
            }

    def _load(self, row: int, record: ClipRecord, clip_index: int, crop_index: int) -> dict:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        clip = self._decode_clip(row, record, clip_index, rng)
        height, width = clip["shape"]
        if self.mode == "train":
            box = random_resized_crop_box(height, width, rng, self.scale)
            flip = bool(rng.random() < 0.5)
        else:
            boxes = three_crop_boxes(height, width)
            box: CropBox = boxes[crop_index] if self.num_crops == 3 else boxes[1]
            flip = False
        rgb, flow = apply_view(clip.get("rgb"), clip.get("flow"), box, flip, self.size, self.rgb_mean, self.rgb_std)
        item = {
            "label": int(self.labels[row]),
            "index": row,
            "video_id": record.video_id,
            "clip_index": clip_index,
            "crop_index": crop_index,
        }
        if rgb is not None:
            item["rgb"] = rgb
        if flow is not None:
            item["flow"] = flow
        return item

    def _decode_clip(self, row: int, record: ClipRecord, clip_index: int, rng: np.random.Generator) -> dict:
        """Frames (and flow) of one temporal clip, before any spatial transform."""
        key = (row, clip_index)
        if self.mode == "test" and self._cached_clip is not None and self._cached_clip[0] == key:
            return self._cached_clip[1]
        with VideoReader(record.path, short_side=self.decode_short_side) as reader:
            first, length = _frame_range(record, reader.num_frames, reader.fps)
            sampling = {"video_fps": reader.fps, "sample_fps": self.sample_fps}
            if self.mode == "train":
                indices = sample_train_clip(length, self.num_frames, self.stride, rng, **sampling)
            else:
                indices = sample_test_clips(length, self.num_frames, self.stride, self.num_clips, **sampling)[
                    clip_index
                ]
            indices = indices + first
            wanted = np.concatenate([indices, indices + 1]) if self.flow_on_the_fly else indices
            frames = reader.frames(wanted)
        clip = {"shape": frames.shape[1:3]}
        if "rgb" in self.modalities:
            clip["rgb"] = frames[: len(indices)]
        if "flow" in self.modalities:
            if self.flow_store is not None:
                clip["flow"] = self.flow_store.read(record, indices)
            else:
                clip["flow"] = flow_between(frames[: len(indices)], frames[len(indices) :])
        if self.mode == "test":
            self._cached_clip = (key, clip)
        return clip

    def _log_skip(self, row: int, record: ClipRecord, error: AvlabelError) -> None:
        if self.error_log is not None:
            # One short O_APPEND write per line: safe from several worker processes at once.
            with open(self.error_log, "a", encoding="utf-8") as handle:
                handle.write(f"{row}\t{record.video_id}\t{error}\n")


def collate_clips(items: list[dict]) -> dict:
    """Batch dataset items, dropping skip markers (reported in ``batch["skipped"]``).

    Returns:
        ``rgb`` ``(B, 3, T, H, W)`` / ``flow`` ``(B, 2, T, H, W)`` when present, ``label``, ``index``,
        ``clip_index``, ``crop_index`` int64 ``(B,)``, ``video_id`` list, ``skipped`` list of
        ``(index, video_id, error)``.
    """
    good = [item for item in items if "error" not in item]
    batch: dict = {
        "skipped": [(item["index"], item["video_id"], item["error"]) for item in items if "error" in item],
        "video_id": [item["video_id"] for item in good],
    }
    for key in ("label", "index", "clip_index", "crop_index"):
        batch[key] = torch.tensor([item[key] for item in good], dtype=torch.int64)
    for key in MODALITIES:
        if good and key in good[0]:
            batch[key] = torch.stack([item[key] for item in good])
    return batch


def _frame_range(record: ClipRecord, num_frames: int, fps: float) -> tuple[int, int]:
    """First frame and number of frames of the record's ``[start, end)`` window."""
    first = min(num_frames - 1, round(record.start * fps)) if record.start is not None else 0
    stop = min(num_frames, round(record.end * fps)) if record.end is not None else num_frames
    return first, max(1, stop - first)
