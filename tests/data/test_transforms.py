"""Crop/flip/resize geometry on RGB and flow, including the sign of flow x under a flip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avlabel.data.transforms import (
    FLOW_BOUND,
    CropBox,
    apply_view,
    crop_resize_flow,
    random_resized_crop_box,
    three_crop_boxes,
)
from avlabel.models.config import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD, IMAGENET_MEAN, IMAGENET_STD

RGB = {"rgb_mean": IMAGENET_MEAN, "rgb_std": IMAGENET_STD}


def _marked_clip(height=40, width=80, frames=2):
    rgb = np.zeros((frames, height, width, 3), dtype=np.uint8)
    rgb[:, 5:10, 60:70] = 255  # a white block right of centre, near the top
    return rgb


@pytest.mark.parametrize(
    ("mean", "std"), [(IMAGENET_MEAN, IMAGENET_STD), (IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD)]
)
def test_output_layout_and_normalisation_with_the_given_statistics(mean, std):
    rgb = np.zeros((3, 16, 16, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 51, 0
    out, flow = apply_view(rgb, None, CropBox(0, 0, 1, 1), False, 8, mean, std)
    assert out.shape == (3, 3, 8, 8) and out.dtype == torch.float32 and flow is None
    expected = (torch.tensor([1.0, 0.2, 0.0]) - torch.tensor(mean)) / torch.tensor(std)
    torch.testing.assert_close(out[:, 0, 0, 0], expected)


def test_crop_selects_the_boxed_region():
    rgb = _marked_clip()
    # The right half of the frame, resized 40x40 -> 20x20: the block moves to columns 10-15 (of 20).
    out, _ = apply_view(rgb, None, CropBox(0.5, 0.0, 0.5, 1.0), False, 20, **RGB)
    white = (out[0, 0] > 1.5).nonzero()
    assert white[:, 1].min() >= 9 and white[:, 1].max() <= 15
    assert white[:, 0].min() >= 2 and white[:, 0].max() <= 5


def test_flip_mirrors_rgb_and_negates_flow_x_only():
    rgb = _marked_clip()
    flow = np.zeros((2, 40, 80, 2), dtype=np.float32)
    flow[:, 5:10, 60:70] = (4.0, -2.0)  # the block moves right and up
    box = CropBox(0, 0, 1, 1)
    plain_rgb, plain_flow = apply_view(rgb, flow, box, False, 40, **RGB)
    flipped_rgb, flipped_flow = apply_view(rgb, flow, box, True, 40, **RGB)
    torch.testing.assert_close(flipped_rgb, plain_rgb.flip(-1))
    torch.testing.assert_close(flipped_flow[0], -plain_flow[0].flip(-1))  # rightward becomes leftward
    torch.testing.assert_close(flipped_flow[1], plain_flow[1].flip(-1))  # vertical unchanged
    # The mirrored block is in the left half and moves left.
    assert flipped_flow[0, :, :, :20].min() < 0 and plain_flow[0, :, :, :40].max() > 0


def test_flow_is_scaled_with_the_resize_and_expressed_in_bound_units():
    flow = np.zeros((1, 100, 200, 2), dtype=np.float32)
    flow[..., 0], flow[..., 1] = 10.0, 6.0
    # A 100x100 crop resized to 50x50 halves both displacements.
    _, out = apply_view(None, flow, CropBox(0.25, 0, 0.5, 1), False, 50)
    assert out.shape == (2, 1, 50, 50)
    torch.testing.assert_close(out[0].mean(), torch.tensor(5.0 / FLOW_BOUND))
    torch.testing.assert_close(out[1].mean(), torch.tensor(3.0 / FLOW_BOUND))
    # Non-square stretch scales each axis by its own factor.
    stretched = crop_resize_flow(torch.from_numpy(flow).permute(0, 3, 1, 2), CropBox(0, 0, 1, 1), (50, 100))
    torch.testing.assert_close(stretched[:, 0].mean(), torch.tensor(5.0))
    torch.testing.assert_close(stretched[:, 1].mean(), torch.tensor(3.0))


def test_same_box_on_rgb_and_lower_resolution_flow():
    rgb = _marked_clip(40, 80)
    flow = np.zeros((2, 20, 40, 2), dtype=np.float32)
    flow[:, 2:5, 30:35, 0] = 8.0  # the same block at half resolution
    out_rgb, out_flow = apply_view(rgb, flow, CropBox(0.5, 0.0, 0.5, 1.0), False, 20, **RGB)
    rgb_cols = (out_rgb[0, 0] > 1.5).nonzero()[:, 1]
    flow_cols = (out_flow[0, 0] > 0.1).nonzero()[:, 1]
    assert abs(rgb_cols.float().mean() - flow_cols.float().mean()) < 1.5


def test_three_crops_span_the_long_side():
    assert three_crop_boxes(100, 200) == [
        CropBox(0.0, 0.0, 0.5, 1.0),
        CropBox(0.25, 0.0, 0.5, 1.0),
        CropBox(0.5, 0.0, 0.5, 1.0),
    ]
    portrait = three_crop_boxes(200, 100)
    assert [box.top for box in portrait] == [0.0, 0.25, 0.5] and all(box.height == 0.5 for box in portrait)


@pytest.mark.parametrize(("height", "width"), [(256, 340), (240, 120), (100, 100)])
def test_random_resized_crop_stays_inside_with_area_and_ratio_in_range(height, width):
    rng = np.random.default_rng(0)
    for _ in range(200):
        box = random_resized_crop_box(height, width, rng, scale=(0.25, 1.0))
        assert box.left >= 0 and box.left + box.width <= 1 + 1e-9
        assert box.top >= 0 and box.top + box.height <= 1 + 1e-9
        area = box.width * box.height
        ratio = (box.width * width) / (box.height * height)
        assert 0.25 - 1e-9 <= area <= 1 + 1e-9 or ratio == pytest.approx(min(max(width / height, 0.75), 4 / 3))
        assert 0.75 - 1e-6 <= ratio <= 4 / 3 + 1e-6
