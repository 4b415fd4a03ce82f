"""What the synthetic clips look like: the frame size, the visual cue, and that cue's parameters.

Two cues are available (``avlabel synth --visual-cue``):

* ``hue-drift`` (default, `avlabel.data.synth.hue_drift`): the class sets the hue of the
  frame (RGB) and the elevation of a camera pan (optical flow), each with its own Gaussian noise,
  so vision is informative, imperfect and learnable from scratch, with its accuracy set by
  ``hue_sigma`` and ``drift_sigma``: the fusion benchmark.
* ``shape-motion`` (`avlabel.data.synth.shape_motion`): the original design, a small class
  object with a class shape and motion over clutter; a tiny from-scratch ViT does not learn it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from avlabel.data.synth.classes import SynthClass
from avlabel.data.synth.hue_drift import HueDriftParams, render_hue_drift
from avlabel.data.synth.shape_motion import ShapeMotionParams, render_shape_motion

VISUAL_CUES = ("hue-drift", "shape-motion")


@dataclass(frozen=True)
class VisualParams:
    """The picture side of a benchmark; ``synth.json`` records ``size``, ``cue`` and that cue's parameters."""

    size: int = 64  # frame height and width in pixels
    cue: str = "hue-drift"  # one of VISUAL_CUES
    hue_drift: HueDriftParams = field(default_factory=HueDriftParams)
    shape_motion: ShapeMotionParams = field(default_factory=ShapeMotionParams)

    def describe(self) -> dict:
        """The record for ``synth.json``: size, cue and the active cue's parameters only."""
        key = self.cue.replace("-", "_")
        return {"size": self.size, "cue": self.cue, key: asdict(getattr(self, key))}


def render_visual(
    rng: np.random.Generator,
    synth_class: SynthClass,
    class_index: int,
    num_classes: int,
    num_frames: int,
    fps: float,
    params: VisualParams,
) -> tuple[np.ndarray, dict]:
    """Frames ``(T, size, size, 3)`` uint8 of one clip of ``synth_class`` and the random draws made."""
    if params.cue == "hue-drift":
        return render_hue_drift(rng, class_index, num_classes, num_frames, params.size, params.hue_drift)
    return render_shape_motion(rng, synth_class, num_frames, fps, params.size, params.shape_motion)
