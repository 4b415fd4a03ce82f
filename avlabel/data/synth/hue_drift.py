"""The ``hue-drift`` visual cue (the default): a class-coloured texture panning in a class direction.

This is a *fusion* benchmark, not a vision benchmark: the visual cue is deliberately simple, so
that a small ViT trained from scratch on a CPU learns it within minutes, and its accuracy is set
by a noise parameter instead of by how much data a Transformer needs (README, "Synthetic
experiment"). Each modality of the two-stream model gets a cue of its own:

* **RGB: the hue.** Every frame is a smooth random grey texture tinted with one hue, class ``k``
  of ``C`` at ``2 pi k / C + N(0, hue_sigma)`` radians (saturation, brightness, contrast and the
  texture are random per clip and say nothing about the class). The hue covers the whole frame,
  so any crop of any patch carries it. With ``hue_sigma`` = 0.4 rad a Bayes-optimal reader of the
  hue alone is right ``1 - 2 (1 - Phi(pi / C / 0.4))`` = 67.5% of the time for C = 8.
* **Optical flow: the direction of the pan.** The texture translates rigidly (a camera pan) at a
  random speed; its *elevation* (angle above the horizontal) is class ``k``'s
  ``-pi/2 + pi (k + 1/2) / C + N(0, drift_sigma)`` and whether it pans left or right is a coin
  flip. The class is therefore carried by a quantity a horizontal flip leaves unchanged (a flip
  negates the horizontal component only), so the training pipeline's random flips keep the cue,
  and grey-level optical flow sees it (the hue is invisible to flow). Elevations of neighbouring
  classes are ``pi / C`` apart, half the spacing of the hues, so ``drift_sigma`` = 0.3 rad makes
  flow the weaker visual modality, as flow is weaker than RGB in the paper's Table 3: a
  Bayes-optimal reader of the elevation alone is right 54.5% of the time for C = 8 (48% for the
  six interior classes, 76% for the two end ones, which have one neighbour), and one reading
  both cues 78.9% (simulated). The RGB stream can see the pan too, across frames.

Both cues are frame-wide, so the random-resized crop (area down to 25%), the resize and the
per-channel normalisation of the training transforms keep them (tested); the aspect-ratio jitter
of the crop bends the elevation by at most ``atan``-distortions of 4/3, a few degrees.

Rendering is vectorised numpy: the texture is band-limited periodic noise built in the Fourier
domain, and each frame's sub-pixel shift is a phase ramp, so all T frames come from one batched
inverse FFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HueDriftParams:
    """How ``hue-drift`` clips look; recorded in ``synth.json``."""

    hue_sigma: float = 0.4  # radians: per-clip Gaussian noise on the class hue (sets RGB accuracy)
    drift_sigma: float = 0.3  # radians: per-clip Gaussian noise on the class pan elevation (sets flow accuracy)
    speed: tuple[float, float] = (0.025, 0.045)  # pan speed range, frame widths per frame (1.6-2.9 px at 64 px)
    wavelength: tuple[float, float] = (0.08, 0.3)  # texture wavelengths kept, fractions of the frame size
    saturation: tuple[float, float] = (0.45, 0.8)  # per-clip colour saturation range
    brightness: tuple[float, float] = (0.45, 0.65)  # per-clip mean brightness range (0-1)
    contrast: tuple[float, float] = (0.12, 0.2)  # per-clip texture std range (0-1 brightness)
    noise_sigma: tuple[float, float] = (2.0, 8.0)  # per-clip pixel noise std range (0-255 scale)


def class_hue(class_index: int, num_classes: int) -> float:
    """The hue (radians) of class ``k`` of ``C``: the hue circle cut into C equal arcs."""
    return 2 * np.pi * class_index / num_classes


def class_elevation(class_index: int, num_classes: int) -> float:
    """The pan elevation (radians, positive = upwards) of class ``k`` of ``C``: ``(-pi/2, pi/2)`` in C equal steps."""
    return -np.pi / 2 + np.pi * (class_index + 0.5) / num_classes


def render_hue_drift(
    rng: np.random.Generator, class_index: int, num_classes: int, num_frames: int, size: int, params: HueDriftParams
) -> tuple[np.ndarray, dict]:
    """Draw one clip of class ``class_index``. Returns ``(T, size, size, 3)`` uint8 frames and the draws made."""
    hue = (class_hue(class_index, num_classes) + rng.normal(0, params.hue_sigma)) % (2 * np.pi)
    elevation = class_elevation(class_index, num_classes) + rng.normal(0, params.drift_sigma)
    side = rng.choice([-1.0, 1.0])  # pans left or right: the flip-invariant cue is the elevation
    speed = rng.uniform(*params.speed) * size
    velocity = speed * np.array(
        [side * np.cos(elevation), -np.sin(elevation)]
    )  # pixels per frame, (x, y); y points down
    texture = _panning_texture(rng, num_frames, size, velocity, params.wavelength)  # (T, H, W), mean 0, std 1
    saturation = rng.uniform(*params.saturation)
    value = np.clip(rng.uniform(*params.brightness) + rng.uniform(*params.contrast) * texture, 0.0, 1.0)
    tint = (1 - saturation) + saturation * _pure_hue(hue)  # (3,) colour of a white pixel
    frames = value[..., None] * (255 * tint).astype(np.float32)  # (T, H, W, 3)
    sigma = rng.uniform(*params.noise_sigma)
    frames += rng.standard_normal((*frames.shape[:3], 1), dtype=np.float32) * np.float32(sigma)  # luminance noise
    draws = {
        "hue": round(float(hue), 4),
        "elevation": round(float(elevation), 4),
        "side": int(side),
        "speed_px": round(float(speed), 3),
        "saturation": round(float(saturation), 3),
        "noise_sigma": round(float(sigma), 3),
    }
    return np.clip(frames, 0, 255, out=frames).astype(np.uint8), draws


def _pure_hue(hue: float) -> np.ndarray:
    """RGB in [0, 1] of the fully saturated, full-value colour of ``hue`` radians (HSV with S = V = 1)."""
    sector = (hue / (np.pi / 3) + np.array([5.0, 3.0, 1.0])) % 6  # per-channel position on the HSV hexagon
    return 1 - np.clip(np.minimum(sector, 4 - sector), 0, 1)


def _panning_texture(
    rng, num_frames: int, size: int, velocity: np.ndarray, wavelength: tuple[float, float]
) -> np.ndarray:
    """Periodic band-limited noise translated by ``velocity`` pixels per frame: ``(T, size, size)`` float32.

    Random complex amplitudes on the spatial frequencies whose wavelength lies in ``wavelength``
    (fractions of ``size``); frame ``t`` multiplies them by the phase ramp of a shift of
    ``t * velocity`` pixels, so the motion is exact to sub-pixel precision.
    """
    fy = np.fft.fftfreq(size)[:, None]  # cycles per pixel, (H, 1)
    fx = np.fft.rfftfreq(size)[None, :]  # (1, W // 2 + 1)
    radius = np.hypot(fx, fy) * size  # cycles per frame
    band = (radius >= 1 / wavelength[1]) & (radius <= 1 / wavelength[0])
    spectrum = (rng.standard_normal(band.shape) + 1j * rng.standard_normal(band.shape)) * band
    shift = np.arange(num_frames)[:, None, None] * velocity[:, None, None, None]  # (2, T, 1, 1): x then y
    ramp = np.exp(-2j * np.pi * (fx[None] * shift[0] + fy[None] * shift[1]))  # (T, H, W // 2 + 1)
    texture = np.fft.irfft2(spectrum[None] * ramp, s=(size, size))
    return ((texture - texture.mean()) / (texture.std() + 1e-12)).astype(np.float32)
