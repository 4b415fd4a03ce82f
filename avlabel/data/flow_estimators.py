"""Optical flow estimators: frame pair in, pixel displacements out.

Flow ``i`` of a video is the displacement from frame ``i`` to frame ``i + 1`` (so ``n`` frames give
``n - 1`` flows), computed on grey frames by OpenCV's DIS (default), Farnebäck or TV-L1 (needs
``opencv-contrib-python-headless``), or by avlabel's PyTorch TV-L1 (``tvl1-torch``,
`avlabel.data.flow_torch`), which runs batches of frame pairs on a GPU.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from avlabel.data.flow_format import FLOW_BOUND, dequantize, quantize
from avlabel.errors import AvlabelError

DIS_PRESETS = ("ultrafast", "fast", "medium")  # also tvl1-torch's presets


# Each factory takes (preset, device) and returns an estimator (previous grey, current grey) -> flow;
# OpenCV's run on the CPU whatever the device.
def _dis(preset: str = "medium", device: str | None = None):
    import cv2

    presets = {
        "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
        "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    }
    estimator = cv2.DISOpticalFlow_create(presets[preset])
    return lambda previous, current: estimator.calc(previous, current, None)


def _farneback(preset: str = "medium", device: str | None = None):
    import cv2

    # OpenCV's documented example parameters: 3 pyramid levels at scale 0.5, 15 px window.
    return lambda previous, current: cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def _tvl1(preset: str = "medium", device: str | None = None):
    import cv2

    if not hasattr(cv2, "optflow"):
        raise AvlabelError(
            "TV-L1 flow needs OpenCV's contrib build: pip uninstall opencv-python-headless && "
            "pip install opencv-contrib-python-headless (or use --method dis)"
        )
    estimator = cv2.optflow.DualTVL1OpticalFlow_create()
    return lambda previous, current: estimator.calc(previous, current, None)


def _tvl1_torch(preset: str = "medium", device: str | None = None):
    from avlabel.data.flow_torch import PRESETS, TVL1Flow

    return TVL1Flow(PRESETS[preset], device=device)  # batched: also takes (N, H, W) stacks of pairs


METHODS: dict[str, Callable[[str, str | None], Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "dis": _dis,
    "farneback": _farneback,
    "tvl1": _tvl1,
    "tvl1-torch": _tvl1_torch,
}


def flow_estimator(
    method: str = "dis", preset: str = "medium", device: str | None = None
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function ``(previous_grey, current_grey) -> (H, W, 2) float32`` pixel displacements.

    ``device`` places ``tvl1-torch`` (default: CUDA when available); the OpenCV methods ignore it.
    An estimator with a ``batch_pairs`` attribute also takes ``(N, H, W)`` stacks (see `estimate_pairs`).
    """
    if method not in METHODS:
        raise AvlabelError(f"unknown flow method {method!r}; choose one of {', '.join(METHODS)}")
    if preset not in DIS_PRESETS:
        raise AvlabelError(f"unknown DIS preset {preset!r}; choose one of {', '.join(DIS_PRESETS)}")
    return METHODS[method](preset, device)


def estimate_pairs(
    estimate: Callable[[np.ndarray, np.ndarray], np.ndarray], previous: np.ndarray, current: np.ndarray
) -> np.ndarray:
    """``(N, H, W)`` grey pairs -> ``(N, H, W, 2)`` flow: one call for a batched estimator, else one per pair."""
    if hasattr(estimate, "batch_pairs"):
        return estimate(previous, current)
    return np.stack([estimate(a, b) for a, b in zip(previous, current, strict=True)])


def to_grey(frames: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 RGB -> ``(N, H, W)`` uint8 luma (BT.601 weights, as OpenCV)."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.round(frames.astype(np.float32) @ weights).astype(np.uint8)


def flow_between(
    first: np.ndarray, second: np.ndarray, method: str = "dis", preset: str = "medium", bound: float = FLOW_BOUND
) -> np.ndarray:
    """On-the-fly flow from ``first[i]`` to ``second[i]`` (both ``(N, H, W, 3)`` uint8).

    Returns:
        ``(N, H, W, 2)`` float32 pixels, quantised and dequantised like stored flow so a model
        sees the same values either way.
    """
    fields = estimate_pairs(flow_estimator(method, preset), to_grey(first), to_grey(second))
    return dequantize(quantize(fields, bound), bound)
