"""Spatial transforms for clips, as batched tensor ops over all T frames at once.

Layout. Models take ``(C, T, H, W)`` float tensors per clip (``(B, C, T, H, W)`` batched):
RGB has C = 3, normalised as ``(pixel / 255 - mean) / std`` with the mean and std the model's
visual weights were trained with (``ModelConfig.rgb_mean`` / ``rgb_std``); flow has C = 2 (x then
y displacement).

Geometry is described by a `CropBox` in *fractions* of the frame, so one box applies to
RGB and to flow even when they were stored at different resolutions (flow is often extracted
at a 256-pixel short side from larger videos). Training: a random-resized crop (area and
aspect-ratio jitter, as torchvision's) and a horizontal flip with probability 1/2; testing:
short-side resize then three square crops along the long side (left/centre/right, or
top/centre/bottom for portrait video) — the "3 spatial crops" of the paper's evaluation.

Flow is a vector field, not an image: resizing a crop by a factor scales the displacements by
the same factor (per axis), and a horizontal flip mirrors the field *and* negates its x
component. Output flow is displacement in output-grid pixels divided by the quantisation bound
(20 px), so typical values lie in [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from avlabel.data.flow_format import FLOW_BOUND  # flow is stored in [-FLOW_BOUND, FLOW_BOUND] px


@dataclass(frozen=True)
class CropBox:
    """A crop in fractions of the frame: ``left``/``top`` corner, ``width``/``height`` extent."""

    left: float
    top: float
    width: float
    height: float

    def pixels(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) pixel bounds on a ``height`` x ``width`` frame, never empty."""
        top, left = round(self.top * height), round(self.left * width)
        bottom = min(height, max(top + 1, round((self.top + self.height) * height)))
        right = min(width, max(left + 1, round((self.left + self.width) * width)))
        return top, bottom, left, right


def random_resized_crop_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.25, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> CropBox:
    """torchvision's RandomResizedCrop sampling: area fraction in ``scale``, aspect ratio in ``ratio``."""
    aspect = width / height
    for _ in range(10):
        area = rng.uniform(*scale)
        crop_ratio = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        crop_width = math.sqrt(area * crop_ratio / aspect)  # fraction of the frame width
        crop_height = math.sqrt(area * aspect / crop_ratio)
        if crop_width <= 1 and crop_height <= 1:
            return CropBox(rng.uniform(0, 1 - crop_width), rng.uniform(0, 1 - crop_height), crop_width, crop_height)
    # Fallback as torchvision: the largest centred crop with the ratio clamped into range.
    crop_ratio = min(max(aspect, ratio[0]), ratio[1])
    crop_width, crop_height = min(1.0, crop_ratio / aspect), min(1.0, aspect / crop_ratio)
    return CropBox((1 - crop_width) / 2, (1 - crop_height) / 2, crop_width, crop_height)


def three_crop_boxes(height: int, width: int) -> list[CropBox]:
    """Three square crops spanning the short side: left/centre/right (top/centre/bottom if portrait)."""
    if width >= height:
        side = height / width
        return [CropBox(left, 0.0, side, 1.0) for left in (0.0, (1 - side) / 2, 1 - side)]
    side = width / height
    return [CropBox(0.0, top, 1.0, side) for top in (0.0, (1 - side) / 2, 1 - side)]


def rgb_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 frames -> a ``(T, 3, H, W)`` uint8 view (channels-last memory, no copy)."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)


def flow_to_tensor(flow: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 2)`` float pixel displacements -> ``(T, 2, H, W)`` float."""
    return torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).permute(0, 3, 1, 2)


def crop_resize(frames: torch.Tensor, box: CropBox, size: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """Crop ``box`` from every frame of ``(T, C, H, W)`` and resize to ``size`` (bilinear).

    RGB stays uint8 here on purpose: PyTorch's antialiased resize has a vectorised uint8
    channels-last kernel that is several times faster than the float one.
    """
    top, bottom, left, right = box.pixels(frames.shape[-2], frames.shape[-1])
    crop = frames[..., top:bottom, left:right]
    if crop.shape[-2:] == size:
        return crop
    return F.interpolate(crop, size=size, mode="bilinear", antialias=antialias, align_corners=False)


def crop_resize_flow(flow: torch.Tensor, box: CropBox, size: tuple[int, int]) -> torch.Tensor:
    """`crop_resize` for a ``(T, 2, H, W)`` flow field, scaling displacements with the resize.

    Flow fields are smooth, so plain bilinear interpolation (no antialiasing) is enough.
    """
    top, bottom, left, right = box.pixels(flow.shape[-2], flow.shape[-1])
    resized = crop_resize(flow, box, size, antialias=False)
    scale = torch.tensor([size[1] / (right - left), size[0] / (bottom - top)], dtype=flow.dtype)
    return resized * scale.view(1, 2, 1, 1)


def hflip(frames: torch.Tensor) -> torch.Tensor:
    """Mirror ``(T, C, H, W)`` frames left-right."""
    return frames.flip(-1)


def hflip_flow(flow: torch.Tensor) -> torch.Tensor:
    """Mirror a ``(T, 2, H, W)`` flow field left-right: rightward motion becomes leftward."""
    flipped = flow.flip(-1)
    return torch.cat([-flipped[:, :1], flipped[:, 1:]], dim=1)


def normalize_rgb(frames: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(T, 3, H, W)`` uint8 -> ``(3, T, H, W)`` float32 ``(frames / 255 - mean) / std`` per channel."""
    mean_t, std_t = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    scale, shift = 1.0 / (255.0 * std_t), mean_t / std_t
    clip = frames.permute(1, 0, 2, 3).contiguous().float()  # (T, 3, H, W) -> (3, T, H, W)
    return clip.mul_(scale.view(3, 1, 1, 1)).sub_(shift.view(3, 1, 1, 1))


def apply_view(
    rgb: np.ndarray | None,
    flow: np.ndarray | None,
    box: CropBox,
    flip: bool,
    size: int,
    rgb_mean: Sequence[float] | None = None,
    rgb_std: Sequence[float] | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """One spatial view of a clip: crop + resize + optional flip, RGB normalised, flow in bound units.

    Args:
        rgb: ``(T, H, W, 3)`` uint8 or None.
        flow: ``(T, H', W', 2)`` float pixel displacements (any resolution) or None.
        box: the crop, in fractions of each modality's own frame.
        flip: mirror left-right.
        size: output side (square).
        rgb_mean, rgb_std: the model's RGB statistics (``ModelConfig.rgb_mean`` / ``rgb_std``);
            required when ``rgb`` is given.

    Returns:
        ``rgb`` as ``(3, T, size, size)`` and ``flow`` as ``(2, T, size, size)`` float32 (None where
        the input was None).
    """
    out_size = (size, size)
    rgb_out = flow_out = None
    if rgb is not None:
        assert rgb_mean is not None and rgb_std is not None, "RGB needs the model's rgb_mean and rgb_std"
        frames = crop_resize(rgb_to_tensor(rgb), box, out_size)
        rgb_out = normalize_rgb(hflip(frames) if flip else frames, rgb_mean, rgb_std)
    if flow is not None:
        field = crop_resize_flow(flow_to_tensor(flow), box, out_size)
        field = hflip_flow(field) if flip else field
        flow_out = (field / FLOW_BOUND).permute(1, 0, 2, 3).contiguous()  # (T, 2, H, W) -> (2, T, H, W)
    return rgb_out, flow_out
