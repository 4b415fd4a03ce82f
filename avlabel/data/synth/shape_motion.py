"""The ``shape-motion`` visual cue: a class object moving in its class's way over clutter and noise.

The benchmark's original design, kept as ``avlabel synth --visual-cue shape-motion``. A tiny ViT
trained from scratch on a few dozen clips per class stays at chance on it (the object is smaller
than a patch and shares its shape and its motion with other classes; README, "Synthetic
experiment"), so it is a vision benchmark more than a fusion one.

A clip is drawn with vectorised numpy over all frames at once: a smooth random background with
static clutter shapes (of every shape, so one frame's shapes do not give the class away), one
moving distractor (random shape, straight bouncing path), the class object (class shape and
motion; random colour, size, position, phase, speed jitter and spin), camera shake and Gaussian
luminance noise. In a share of the clips the object is faint ("hard" clips), so vision alone cannot
be perfect. Shapes are drawn anti-aliased from signed distances (pixels, positive inside).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avlabel.data.synth.classes import MOTIONS, SHAPES, SynthClass


@dataclass(frozen=True)
class ShapeMotionParams:
    """How ``shape-motion`` clips look; recorded in ``synth.json``."""

    clutter: int = 6  # static shapes in the background
    distractors: int = 1  # moving non-class objects
    noise_sigma: tuple[float, float] = (4.0, 14.0)  # per-clip pixel noise std range (0-255 scale)
    shake_px: float = 1.5  # camera shake amplitude
    object_radius: tuple[float, float] = (9.0, 14.0)  # class object size range (pixels)
    amplitude: tuple[float, float] = (0.14, 0.24)  # motion amplitude range, fraction of the frame size
    speed_jitter: tuple[float, float] = (0.8, 1.25)  # per-clip factor on the class speed
    visibility: tuple[float, float] = (0.55, 1.0)  # object opacity range in normal clips
    hard_fraction: float = 0.25  # share of clips with a faint object
    hard_visibility: tuple[float, float] = (0.12, 0.3)  # object opacity range in hard clips


def shape_distance(shape: str, dx: np.ndarray, dy: np.ndarray, radius, angle) -> np.ndarray:
    """Signed distance (pixels, positive inside) of points ``(dx, dy)`` from a shape's outline.

    ``radius`` and ``angle`` broadcast against ``dx``/``dy`` (per-frame size and spin).
    """
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy  # rotate the points into the shape's frame
    if shape == "disk":
        return radius - np.hypot(u, v)
    if shape == "ring":
        return 0.3 * radius - np.abs(np.hypot(u, v) - 0.75 * radius)
    if shape == "square":
        return 0.85 * radius - np.maximum(np.abs(u), np.abs(v))
    if shape == "diamond":
        return (radius - np.abs(u) - np.abs(v)) / np.sqrt(2)
    if shape == "cross":
        arm = 0.32 * radius
        horizontal = np.minimum(radius - np.abs(u), arm - np.abs(v))
        vertical = np.minimum(radius - np.abs(v), arm - np.abs(u))
        return np.maximum(horizontal, vertical)
    if shape == "triangle":
        edges = [
            np.cos(a) * u + np.sin(a) * v for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3)
        ]
        return 0.55 * radius - np.maximum(np.maximum(edges[0], edges[1]), edges[2])
    raise ValueError(f"unknown shape {shape!r}; shapes are {SHAPES}")


def trajectory(motion: str, t: np.ndarray, frequency: float, amplitude: float, phase: float, direction: float):
    """Centre offsets ``(x, y)`` and size factor per frame for a motion pattern."""
    angle = 2 * np.pi * frequency * t + phase
    zero, one = np.zeros_like(t), np.ones_like(t)
    if motion == "bounce":  # up and down like a stick on a drum: a rectified sine
        return zero, amplitude * (0.5 - np.abs(np.sin(angle / 2))) * 2, one
    if motion == "sway":
        return amplitude * np.sin(angle), zero, one
    if motion == "orbit":
        return amplitude * np.cos(direction * angle), amplitude * np.sin(direction * angle), one
    if motion == "pulse":  # grows and shrinks in place, drifting slightly
        return 0.15 * amplitude * np.sin(0.3 * angle), zero, 1 + 0.45 * np.sin(angle)
    if motion == "figure8":
        return amplitude * np.sin(angle), 0.5 * amplitude * np.sin(2 * angle), one
    if motion == "zigzag":  # a triangle wave along a diagonal
        s = amplitude * (2 * np.abs(2 * ((angle / (2 * np.pi)) % 1) - 1) - 1)
        return s * np.cos(direction * np.pi / 4), s * np.sin(np.pi / 4), one
    raise ValueError(f"unknown motion {motion!r}; motions are {MOTIONS}")


def render_shape_motion(
    rng: np.random.Generator, synth_class: SynthClass, num_frames: int, fps: float, size: int, params: ShapeMotionParams
) -> tuple[np.ndarray, dict]:
    """Draw one clip of a class. Returns ``(T, size, size, 3)`` uint8 frames and the random draws made."""
    shape, motion, speed = synth_class.shape, synth_class.motion, synth_class.speed
    t = np.arange(num_frames) / fps
    shake = _camera_shake(rng, num_frames, params.shake_px)  # (T, 2)
    frames = _shaken_background(_background(rng, size, params), shake, params.shake_px)  # (T, H, W, 3)

    for _ in range(params.distractors):
        _draw_distractor(rng, frames, t, shake)

    radius = rng.uniform(*params.object_radius)
    amplitude = rng.uniform(*params.amplitude) * size
    frequency = speed * rng.uniform(*params.speed_jitter)
    hard = bool(rng.random() < params.hard_fraction)
    visibility = rng.uniform(*(params.hard_visibility if hard else params.visibility))
    dx, dy, grow = trajectory(motion, t, frequency, amplitude, rng.uniform(0, 2 * np.pi), rng.choice([-1.0, 1.0]))
    margin = amplitude + 1.5 * radius + 2
    centre = rng.uniform(min(margin, size / 2), max(size - margin, size / 2), size=2)
    spin = rng.uniform(0, 2 * np.pi) + rng.uniform(-1.0, 1.0) * t
    centres = np.stack([centre[0] + dx, centre[1] + dy], axis=1) + shake
    _draw_moving(frames, shape, centres, radius * grow, spin, _bright_colour(rng), visibility)

    sigma = rng.uniform(*params.noise_sigma)
    # Luminance noise (the same on all channels): as random as colour noise for a model, 3x cheaper.
    frames += rng.standard_normal((*frames.shape[:3], 1), dtype=np.float32) * np.float32(sigma)
    draws = {
        "radius": round(float(radius), 3),
        "amplitude": round(float(amplitude), 3),
        "frequency": round(float(frequency), 4),
        "visibility": round(float(visibility), 4),
        "hard": hard,
        "noise_sigma": round(float(sigma), 3),
    }
    return np.clip(frames, 0, 255, out=frames).astype(np.uint8), draws


def _draw_moving(frames, shape, centres, radii, angles, colour, opacity) -> None:
    """Blend a shape at per-frame ``centres`` (T, 2), ``radii`` (T,), ``angles`` (T,) into ``frames``.

    Only a square patch around each centre is computed (the shape covers a few percent of the
    frame), gathered and scattered for all frames at once.
    """
    num_frames, height, width, _ = frames.shape
    patch = 2 * int(np.ceil(np.max(radii) * 1.5)) + 4
    corner = np.floor(centres).astype(int) - patch // 2  # (T, 2) top-left of each patch, (x, y)
    offsets = np.arange(patch)
    cols = corner[:, 0:1] + offsets  # (T, P)
    rows = corner[:, 1:2] + offsets
    dx = (cols - centres[:, 0:1])[:, None, :].astype(np.float32)  # (T, 1, P)
    dy = (rows - centres[:, 1:2])[:, :, None].astype(np.float32)  # (T, P, 1)
    coverage = np.clip(shape_distance(shape, dx, dy, radii[:, None, None], angles[:, None, None]) + 0.5, 0, 1)
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]  # (T, P, P)
    frame_index = np.broadcast_to(np.arange(num_frames)[:, None, None], inside.shape)[inside]
    row_index = np.broadcast_to(rows[:, :, None], inside.shape)[inside]
    col_index = np.broadcast_to(cols[:, None, :], inside.shape)[inside]
    alpha = (coverage[inside] * np.float32(opacity))[:, None].astype(np.float32)
    region = frames[frame_index, row_index, col_index]  # (N, 3) gathered pixels
    frames[frame_index, row_index, col_index] = region * (1 - alpha) + alpha * np.asarray(colour, dtype=np.float32)


def _background(rng, size, params) -> np.ndarray:
    """A smooth colour field (bilinear upsampling of a 4x4 grid) with static clutter shapes."""
    coarse = rng.uniform(40, 215, size=(4, 4, 3)).astype(np.float32)
    position = np.linspace(0, 3, size, dtype=np.float32)
    low = np.floor(position).astype(int).clip(0, 2)
    weight = (position - low)[:, None]
    rows = coarse[low] * (1 - weight[..., None]) + coarse[low + 1] * weight[..., None]  # (size, 4, 3)
    background = rows[:, low] * (1 - weight[None, :, :]) + rows[:, low + 1] * weight[None, :, :]  # (size, size, 3)
    for _ in range(params.clutter):
        shape = SHAPES[rng.integers(len(SHAPES))]
        centre = rng.uniform(0, size, size=(1, 2))
        _draw_moving(
            background[None],
            shape,
            centre,
            np.array([rng.uniform(4, 12)]),
            np.array([rng.uniform(0, 2 * np.pi)]),
            rng.uniform(0, 255, size=3),
            rng.uniform(0.25, 0.6),
        )
    return background


def _shaken_background(background, shake, amplitude) -> np.ndarray:
    """The background seen by a shaking camera: ``(T, H, W, 3)`` crops of an edge-padded copy."""
    margin = int(np.ceil(amplitude)) + 1
    padded = np.pad(background, ((margin, margin), (margin, margin), (0, 0)), mode="edge")
    size = background.shape[0]
    shifts = np.round(shake).astype(int)
    return np.stack([padded[margin - sy : margin - sy + size, margin - sx : margin - sx + size] for sx, sy in shifts])


def _draw_distractor(rng, frames, t, shake) -> None:
    """A random shape on a straight path that bounces off the frame edges."""
    size = frames.shape[1]
    radius = rng.uniform(5, 9)
    start = rng.uniform(radius, size - radius, size=2)
    heading = rng.uniform(0, 2 * np.pi)
    velocity = rng.uniform(10, 40) * np.array([np.cos(heading), np.sin(heading)])
    span = size - 2 * radius
    path = start[None] - radius + velocity[None] * t[:, None]  # unfolded positions, (T, 2)
    folded = span - np.abs(span - np.mod(path, 2 * span)) + radius  # reflect at both walls
    shape = SHAPES[rng.integers(len(SHAPES))]
    angles = np.full(len(t), rng.uniform(0, 2 * np.pi))
    _draw_moving(
        frames, shape, folded + shake, np.full(len(t), radius), angles, _bright_colour(rng), rng.uniform(0.4, 0.9)
    )


def _camera_shake(rng, num_frames, amplitude) -> np.ndarray:
    """A smooth random walk, kept within ``amplitude`` pixels: ``(T, 2)``."""
    walk = np.cumsum(rng.normal(0, 0.4, size=(num_frames, 2)), axis=0)
    return np.clip(walk - walk.mean(0), -amplitude, amplitude)


def _bright_colour(rng) -> np.ndarray:
    colour = rng.uniform(0, 255, size=3)
    colour[rng.integers(3)] = rng.choice([20.0, 235.0])  # one saturated channel keeps it off grey
    return colour
