"""The classes of the synthetic benchmark: a Kinetics-400 label, its sound, its look and motion.

Every class name is a Kinetics-400 label whose sound has a clear AudioSet counterpart; the audio
tags are AudioSet display names (checked against ``data_labels/audioset.csv`` by the tests).
Visually, each shape is shared by two classes and each motion by two others, and no two classes
share both: one frame narrows a class to two candidates, the motion (seen in flow or across
RGB frames) to two others, and only both together decide it. Clutter, a moving distractor,
camera shake, pixel noise and faint objects in a share of the clips keep vision imperfect, which
is where relevant audio helps and misleading audio hurts — the situation IMD is built for.
"""

from __future__ import annotations

from dataclasses import dataclass

SHAPES = ("disk", "square", "triangle", "ring", "cross", "diamond")
MOTIONS = ("bounce", "sway", "orbit", "pulse", "figure8", "zigzag")


@dataclass(frozen=True)
class SynthClass:
    """One class of the benchmark."""

    name: str  # Kinetics-400 label
    audio_labels: tuple[str, ...]  # AudioSet display names of its sound, most specific first
    sound: str  # key of the sound generator in avlabel.data.synth.sounds.SOUNDS
    shape: str  # key in SHAPES
    motion: str  # key in MOTIONS
    speed: float  # motion cycles per second (jittered per clip)


# Ordered so that any prefix of 8 (the default) or 12 classes keeps shapes and motions shared
# pairwise with distinct (shape, motion) combinations.
CLASSES: tuple[SynthClass, ...] = (
    SynthClass("playing drums", ("Drum kit", "Drum"), "drums", "disk", "bounce", 2.0),
    SynthClass("playing trumpet", ("Trumpet", "Brass instrument"), "trumpet", "square", "sway", 0.8),
    SynthClass("whistling", ("Whistling",), "whistling", "triangle", "orbit", 0.7),
    SynthClass("applauding", ("Applause", "Clapping"), "applause", "ring", "pulse", 3.0),
    SynthClass("playing violin", ("Violin, fiddle", "Bowed string instrument"), "violin", "disk", "sway", 1.2),
    SynthClass("playing xylophone", ("Marimba, xylophone", "Mallet percussion"), "xylophone", "square", "bounce", 1.5),
    SynthClass("playing flute", ("Flute", "Wind instrument, woodwind instrument"), "flute", "triangle", "pulse", 1.0),
    SynthClass("playing harmonica", ("Harmonica",), "harmonica", "ring", "orbit", 1.1),
    SynthClass("playing bagpipes", ("Bagpipes",), "bagpipes", "cross", "figure8", 0.6),
    SynthClass("playing organ", ("Organ",), "organ", "diamond", "zigzag", 0.9),
    SynthClass("playing accordion", ("Accordion",), "accordion", "cross", "zigzag", 0.5),
    SynthClass("playing cello", ("Cello", "Bowed string instrument"), "cello", "diamond", "figure8", 0.8),
)

# Sounds of irrelevant clips that belong to no class: (generator key, AudioSet display names).
BACKGROUNDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("white_noise", ("White noise",)),
    ("pink_noise", ("Pink noise",)),
    ("hum", ("Hum",)),
    ("silence", ("Silence",)),
)
