"""Frame pairs with known optical flow, and the end-point error of an estimate against it.

A scene is a textured background that the camera moves by a sub-pixel translation, with a
textured disc moving on its own over it: the two motions of most action videos (camera and
actor), with an occlusion boundary between them. Both textures are sums of sinusoids, so they
are rendered *exactly* at any sub-pixel position (no interpolation of a sampled image, whose
error would count against the estimator), and band-limited below half the sampling rate, as a
camera's optics make real frames. Amplitudes fall as 1/frequency, the spectrum of natural images.

The true flow is the translation of whatever a pixel of the first frame shows. Pixels where it
is undefined or unobservable are masked out of the error (``valid``): background covered by the
disc in the second frame (occluded), pixels straddling the disc's anti-aliased rim, and pixels
that leave the frame. The end-point error (EPE) is the mean Euclidean distance between estimated
and true displacement over the valid pixels, the measure of the Middlebury (Baker et al., IJCV
2011) and Sintel benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MotionPair:
    """Two frames and the flow that maps the first onto the second."""

    first: np.ndarray  # (H, W, 3) uint8 RGB (grey: the three channels are equal)
    second: np.ndarray  # (H, W, 3) uint8
    flow: np.ndarray  # (H, W, 2) float32 pixels (x, y) from ``first`` to ``second``
    valid: np.ndarray  # (H, W) bool: pixels the error is measured on


def _texture(rng: np.random.Generator, components: int = 96) -> tuple[np.ndarray, ...]:
    """Random sinusoids: frequencies log-uniform in [1/96, 1/4] cycles/px, amplitude ~ 1/f."""
    frequency = np.exp(rng.uniform(np.log(1 / 96), np.log(1 / 4), components))
    angle = rng.uniform(0, np.pi, components)
    phase = rng.uniform(0, 2 * np.pi, components)
    return frequency * np.cos(angle), frequency * np.sin(angle), phase, 1 / frequency


def _render(texture: tuple[np.ndarray, ...], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The texture at (sub-pixel) coordinates ``x``, ``y``, scaled to zero mean and unit std."""
    fx, fy, phase, amplitude = texture
    values = np.zeros(x.shape, np.float64)
    for component in range(len(fx)):  # a loop over 96 components, each a whole-image operation
        values += amplitude[component] * np.cos(2 * np.pi * (fx[component] * x + fy[component] * y) + phase[component])
    return values / np.sqrt(0.5 * np.sum(amplitude**2))


def motion_pair(
    height: int = 256,
    width: int = 340,
    camera: tuple[float, float] = (1.37, -0.62),
    object_motion: tuple[float, float] = (-4.21, 2.83),
    radius: float | None = None,
    noise: float = 0.0,
    seed: int = 0,
) -> MotionPair:
    """Render a scene whose background moves by ``camera`` and a disc by ``object_motion`` (x, y px).

    Args:
        height, width: frame size.
        camera: displacement of the background between the frames.
        object_motion: displacement of the disc (radius ``radius``, default a fifth of the short
            side), placed at a random spot that keeps it inside both frames.
        noise: standard deviation of Gaussian noise added to each frame, in grey levels (sensor
            and compression noise), before rounding to uint8.
        seed: draws the textures, the disc's position and the noise.
    """
    rng = np.random.default_rng(seed)
    background, foreground = _texture(rng), _texture(rng)
    radius = radius if radius is not None else min(height, width) / 5
    margin = radius + 2 + np.abs(object_motion)
    centre = np.array([rng.uniform(margin[0], width - 1 - margin[0]), rng.uniform(margin[1], height - 1 - margin[1])])
    moved_centre = centre + np.asarray(object_motion)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)

    def frame(shift: np.ndarray, disc_centre: np.ndarray) -> np.ndarray:
        # A point at p in the first frame is at p + shift in this one: this frame at q shows p = q - shift.
        scene = 32 * _render(background, x - shift[0], y - shift[1])
        disc = (
            32 * _render(foreground, x - disc_centre[0], y - disc_centre[1]) + 24
        )  # brighter on average: a visible edge
        coverage = np.clip(radius + 0.5 - np.hypot(x - disc_centre[0], y - disc_centre[1]), 0, 1)  # anti-aliased rim
        grey = 128 + (1 - coverage) * scene + coverage * disc + noise * rng.standard_normal((height, width))
        return np.repeat(np.clip(np.round(grey), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)

    first = frame(np.zeros(2), centre)
    second = frame(np.asarray(camera, np.float64), moved_centre)
    distance = np.hypot(x - centre[0], y - centre[1])
    on_disc = distance < radius
    flow = np.where(on_disc[..., None], np.asarray(object_motion), np.asarray(camera)).astype(np.float32)
    target_x, target_y = x + flow[..., 0], y + flow[..., 1]
    occluded = ~on_disc & (np.hypot(target_x - moved_centre[0], target_y - moved_centre[1]) < radius + 1.5)
    rim = np.abs(distance - radius) < 1.5
    inside = (target_x >= 0) & (target_x <= width - 1) & (target_y >= 0) & (target_y <= height - 1)
    return MotionPair(first, second, flow, inside & ~occluded & ~rim)


def end_point_error(estimate: np.ndarray, pair: MotionPair) -> float:
    """Mean Euclidean distance (px) between ``estimate`` ``(H, W, 2)`` and the true flow on valid pixels."""
    error = np.linalg.norm(np.asarray(estimate, np.float64) - pair.flow, axis=-1)
    return float(error[pair.valid].mean())
