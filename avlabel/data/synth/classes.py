"""The classes of the synthetic benchmark: a Kinetics-400 label, its sound, and its look for each visual cue.

Every class name is a Kinetics-400 label whose sound has a clear AudioSet counterpart; the audio
tags are AudioSet display names (checked against ``data_labels/audioset.csv`` by the tests).

Tags and the relevance targets. ``avlabel targets`` scores a clip's audio against a class by the
overlap between the clip's tags and the class's k SAVLD labels (paper Sec. 3.5). The first eight
classes (the default benchmark) are chosen and tagged so that, with the shipped
Kinetics-400 x AudioSet dictionary (MiniLM, k = 10), a class's own sound scores exactly 1 and
every other class's sound exactly 0: each tag is among its class's SAVLD labels and among no
other default class's. Tagging a drum kit also as "Drum" (listed for playing bagpipes) or a
xylophone also as "Mallet percussion" (not among its own labels), or including playing flute
(whose row lists Trumpet, Harmonica and Violin), would give misleading sounds targets of 0.45 to
1.0 and own sounds 0.45 -- artefacts of the dictionary, not of the clips (a test checks the
matrix). Classes 9-12 do share SAVLD labels with earlier ones (strings, reeds), as real
datasets do.

Visually (the ``shape-motion`` cue), each shape is shared by two classes and each motion by two
others, and no two classes share both: one frame narrows a class to two candidates, the motion
(seen in flow or across RGB frames) to two others, and only both together decide it. The
``hue-drift`` cue uses only a class's position in the table (`avlabel.data.synth.hue_drift`).
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


# Ordered so that the first 8 (the default) have clean relevance targets (module docstring) and
# any prefix of 8 or 12 classes keeps shapes and motions shared pairwise with distinct (shape,
# motion) combinations.
CLASSES: tuple[SynthClass, ...] = (
    SynthClass("playing drums", ("Drum kit",), "drums", "disk", "bounce", 2.0),
    SynthClass("playing trumpet", ("Trumpet", "Brass instrument"), "trumpet", "square", "sway", 0.8),
    SynthClass("whistling", ("Whistling",), "whistling", "triangle", "orbit", 0.7),
    SynthClass("applauding", ("Applause", "Clapping"), "applause", "ring", "pulse", 3.0),
    SynthClass("playing violin", ("Violin, fiddle", "Bowed string instrument"), "violin", "disk", "sway", 1.2),
    SynthClass("playing xylophone", ("Marimba, xylophone",), "xylophone", "square", "bounce", 1.5),
    SynthClass("playing bagpipes", ("Bagpipes",), "bagpipes", "triangle", "pulse", 0.6),
    SynthClass("mowing lawn", ("Lawn mower",), "lawn_mower", "ring", "orbit", 1.1),
    SynthClass("playing harmonica", ("Harmonica",), "harmonica", "cross", "figure8", 1.0),
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
