"""Relevance targets: how well a clip's sound matches a video class (paper section 4.2.3).

The relevance network (Eq. 4) is trained with binary cross-entropy against a soft target in
[0, 1] built from two label sets over the audio vocabulary (AudioSet):

* ``A`` -- what the clip's audio contains: the top-``Y_a`` AudioSet labels predicted by the
  frozen AST for that audio window, or labels given with ``--tags`` (human annotation, another
  tagger, the synthetic benchmark's ground truth);
* ``B`` -- what the class should sound like: the ``k`` SAVLD audio labels of the video class.

With ``i = |A ∩ B|``, ``a = |A|`` and ``b = |B|``, the two overlaps the paper compares are

* IoU:  ``i / (a + b - i)``, largest possible value ``min(a, b) / max(a, b)`` (when the smaller
  set lies inside the larger), and
* Dice: ``2 i / (a + b)``, largest possible value ``2 min(a, b) / (a + b)``.

The paper says only that the overlap "is normalized into the [0-1] range to match the relevant
network (RN) output range" (Fig. 2). How is a choice, ``normalize``:

* ``max`` (default): with ``k != Y_a`` neither overlap can reach 1 (IoU at most 0.5 for the
  paper's k = 10, Y_a = 20), so each is divided by its largest reachable value and a clip whose
  audio labels hold all of the class's labels gets 1, like a confident sigmoid:

      target_IoU  = i * max(a, b) / (min(a, b) * (a + b - i))
      target_Dice = i / min(a, b)

* ``none``: the overlap itself, ``i / (a + b - i)`` or ``2 i / (a + b)``, which lies in [0, 1]
  by definition but tops out below 1 when ``k != Y_a``.

We keep ``max`` as the default because the paper's words only describe a step when the raw
overlap does not already span [0, 1]. The choice changes what alpha means: with k = 10 and
Y_a = 20, alpha = 0.25 keeps audio sharing at least 4 of the class's 10 labels under ``max``
(2i / (30 - i) >= 0.25) and at least 6 under ``none`` (i / (30 - i) >= 0.25).

``target = 0`` when ``a = 0`` or ``b = 0``. Audio that is missing or silent is irrelevant by
definition, so its ``A`` is empty and its target 0. The paper's defaults are ``k = 10``,
``Y_a = 20`` and IoU (Table 4). Because a target is a function of (audio row, class) only,
intra-class cross-modality augmentation (section 3.6: audio borrowed from another video of the
same class) looks its target up with `RelevanceTargets.pairs`, nothing is recomputed.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avlabel._io import atomic_path, atomic_write_json
from avlabel.errors import AvlabelError, reading

OVERLAPS = ("iou", "dice")
NORMALIZATIONS = ("max", "none")  # divide by the largest reachable overlap, or keep it as is
TARGETS_JSON = "targets.json"
TARGETS_NPZ = "targets.npz"
_CHUNK = 16_384  # rows per vectorised block (bounds the (rows, labels) multi-hot temporaries)


def overlap_target(intersection, size_a, size_b, overlap: str = "iou", normalize: str = "max") -> np.ndarray:
    """IoU or Dice overlap from set sizes (broadcasting arrays), normalised as the module docs say.

    Args:
        intersection: ``|A ∩ B|``.
        size_a: ``|A|`` (``Y_a`` for AST predictions).
        size_b: ``|B|`` (``k``).
        overlap: ``"iou"`` or ``"dice"``.
        normalize: ``"max"`` (divide by the largest reachable overlap) or ``"none"``.

    Returns:
        float32 array in [0, 1]; 0 where either set is empty.
    """
    check_target_settings(overlap, normalize)
    i, a, b = (np.asarray(x, dtype=np.float64) for x in (intersection, size_a, size_b))
    low, high = np.minimum(a, b), np.maximum(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        if overlap == "iou":
            value = i / (a + b - i)
            reachable = low / high  # B inside A (or A inside B)
        else:
            value = 2 * i / (a + b)
            reachable = 2 * low / (a + b)
        if normalize == "max":
            value = value / reachable
    return np.where(low > 0, value, 0.0).astype(np.float32)


def check_target_settings(overlap: str, normalize: str) -> None:
    """Raise `AvlabelError` for an unknown overlap or normalisation name."""
    if overlap not in OVERLAPS:
        raise AvlabelError(f"unknown overlap {overlap!r}; choose one of {', '.join(OVERLAPS)}")
    if normalize not in NORMALIZATIONS:
        raise AvlabelError(f"unknown target normalisation {normalize!r}; choose one of {', '.join(NORMALIZATIONS)}")


def multi_hot(sets: np.ndarray, num_labels: int) -> np.ndarray:
    """``(N, Y)`` label indices (``-1`` = padding) -> ``(N, num_labels)`` bool membership."""
    sets = np.asarray(sets)
    hot = np.zeros((len(sets), num_labels + 1), dtype=bool)  # last column swallows the padding
    hot[np.arange(len(sets))[:, None], np.where(sets >= 0, sets, num_labels)] = True
    return hot[:, :num_labels]


def top_labels(probs: np.ndarray, ya: int, has_audio: np.ndarray) -> np.ndarray:
    """The ``ya`` most probable labels of every row (``(R, ya)`` int16, ``-1`` rows without audio)."""
    if not 1 <= ya <= probs.shape[1]:
        raise AvlabelError(f"--ya must be between 1 and {probs.shape[1]} (the tagger's label count), got {ya}")
    sets = np.full((len(probs), ya), -1, dtype=np.int16)
    for start in range(0, len(probs), _CHUNK):
        block = np.asarray(probs[start : start + _CHUNK], dtype=np.float32)
        top = np.argpartition(-block, ya - 1, axis=1)[:, :ya]  # unordered top-ya: A is a set
        sets[start : start + len(block)] = np.where(has_audio[start : start + len(block), None], top, -1)
    return sets


@dataclass(frozen=True)
class AudioTags:
    """Given audio labels per video (``--tags``): label indices and, when known, 0/1 relevance."""

    labels: dict[str, tuple[int, ...]]
    relevant: dict[str, int]  # video_id -> ground-truth relevance, for videos that have one


def read_tags(path: str | os.PathLike[str], audio_labels) -> AudioTags:
    """Read a tags CSV: ``video_id,audio_labels[,relevant]``.

    ``audio_labels`` joins label names of ``audio_labels`` (a LabelSet) with ``;`` (AudioSet names
    contain commas); it may be empty (no sound event). ``relevant`` (optional, 0/1) is the known
    relevance, used only to report how well the targets agree with it.
    """
    path = Path(path)
    if not path.is_file():
        raise AvlabelError(f"tags file not found: {path}; pass a CSV with the columns video_id,audio_labels[,relevant]")
    labels: dict[str, tuple[int, ...]] = {}
    relevant: dict[str, int] = {}
    fix = "save it as a UTF-8 CSV with the columns video_id,audio_labels[,relevant]"
    with reading(f"tags file {path}", fix), open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"video_id", "audio_labels"} <= set(reader.fieldnames):
            raise AvlabelError(
                f"{path} must have the columns video_id,audio_labels[,relevant]; found {reader.fieldnames}"
            )
        for line, row in enumerate(reader, start=2):
            names = [name.strip() for name in (row["audio_labels"] or "").split(";") if name.strip()]
            try:
                labels[row["video_id"]] = tuple(sorted({audio_labels.index(name) for name in names}))
            except AvlabelError as error:
                raise AvlabelError(f"{path}, line {line}: {error}") from None
            value = (row.get("relevant") or "").strip()
            if value:
                if value not in ("0", "1"):
                    raise AvlabelError(f"{path}, line {line}: relevant must be 0 or 1, got {value!r}")
                relevant[row["video_id"]] = int(value)
    return AudioTags(labels=labels, relevant=relevant)


def tag_sets(video_ids: Sequence[str], tags: AudioTags, has_audio: np.ndarray) -> np.ndarray:
    """``(R, Y)`` int16 label sets of cache rows from given tags (``-1`` padding; empty without audio)."""
    width = max((len(labels) for labels in tags.labels.values()), default=0)
    sets = np.full((len(video_ids), max(width, 1)), -1, dtype=np.int16)
    for row, video_id in enumerate(video_ids):
        labels = tags.labels.get(video_id, ())
        if has_audio[row] and labels:
            sets[row, : len(labels)] = labels
    return sets


class RelevanceTargets:
    """Targets for any (audio row, video class) pair, vectorised with multi-hot matrices.

    Args:
        audio_sets: ``(R, Y)`` int label indices of ``A`` per cache row, ``-1`` padded (all
            ``-1`` for rows without audio).
        class_sets: ``(C, k)`` int SAVLD label indices of ``B`` per video class.
        row_class: ``(R,)`` int video class of each row's video in the manifest, ``-1`` when the
            row's video is not in it.
        num_labels: size of the audio vocabulary (527 for AudioSet).
        overlap: ``"iou"`` or ``"dice"``.
        meta: provenance (label sets, k, Y_a, source of ``A``), saved in ``targets.json``.
        normalize: ``"max"`` or ``"none"`` (see the module docs).
    """

    def __init__(
        self,
        audio_sets,
        class_sets,
        row_class,
        num_labels: int,
        overlap: str = "iou",
        meta: dict | None = None,
        normalize: str = "max",
    ):
        check_target_settings(overlap, normalize)
        self.audio_sets = np.asarray(audio_sets)
        self.class_sets = np.asarray(class_sets)
        self.row_class = np.asarray(row_class)
        self.num_labels = int(num_labels)
        self.overlap = overlap
        self.normalize = normalize
        self.meta = dict(meta or {})
        self._class_hot = multi_hot(self.class_sets, self.num_labels)  # (C, L)
        self._class_size = self._class_hot.sum(axis=1)

    def __len__(self) -> int:
        return len(self.audio_sets)

    def matrix(self, rows, classes) -> np.ndarray:
        """``(len(rows), len(classes))`` float32 targets of every row against every class."""
        rows, classes = np.asarray(rows, dtype=np.int64), np.asarray(classes, dtype=np.int64)
        audio_hot = multi_hot(self.audio_sets[rows], self.num_labels).astype(np.float32)  # (n, L)
        class_hot = self._class_hot[classes].astype(np.float32)  # (m, L)
        intersection = audio_hot @ class_hot.T  # (n, m)
        return overlap_target(
            intersection,
            audio_hot.sum(axis=1)[:, None],
            self._class_size[classes][None, :],
            self.overlap,
            self.normalize,
        )

    def pairs(self, rows, classes) -> np.ndarray:
        """``(n,)`` float32 target of ``rows[j]`` for ``classes[j]`` (e.g. borrowed audio, own class)."""
        rows, classes = np.asarray(rows, dtype=np.int64), np.asarray(classes, dtype=np.int64)
        out = np.empty(len(rows), dtype=np.float32)
        for start in range(0, len(rows), _CHUNK):
            block_rows, block_classes = rows[start : start + _CHUNK], classes[start : start + _CHUNK]
            audio_hot = multi_hot(self.audio_sets[block_rows], self.num_labels)  # (n, L)
            intersection = (audio_hot & self._class_hot[block_classes]).sum(axis=1)
            out[start : start + len(block_rows)] = overlap_target(
                intersection, audio_hot.sum(axis=1), self._class_size[block_classes], self.overlap, self.normalize
            )
        return out

    def for_items(self, rows) -> np.ndarray:
        """``(n,)`` float32 target of each row for its own video's class."""
        rows = np.asarray(rows, dtype=np.int64)
        classes = self.row_class[rows]
        if (classes < 0).any():
            raise ValueError("some rows belong to videos outside the manifest these targets were built for")
        return self.pairs(rows, classes)

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write ``targets.npz`` (arrays) and ``targets.json`` (overlap, normalisation, provenance) atomically."""
        directory = Path(directory)
        with atomic_path(directory / TARGETS_NPZ) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, audio_sets=self.audio_sets, class_sets=self.class_sets, row_class=self.row_class)
        atomic_write_json(
            directory / TARGETS_JSON,
            {**self.meta, "overlap": self.overlap, "normalize": self.normalize, "num_labels": self.num_labels},
        )

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> RelevanceTargets:
        """Read what `save` wrote (``avlabel targets -o DIR`` writes it into DIR)."""
        directory = Path(directory)
        if not (directory / TARGETS_JSON).is_file() or not (directory / TARGETS_NPZ).is_file():
            raise AvlabelError(
                f"no relevance targets in {directory}; compute them with: avlabel targets ... -o {directory}"
            )
        with reading(
            f"relevance targets in {directory}",
            f"recompute them with: avlabel targets ... -o {directory}",
            also=(KeyError,),
        ):
            meta = json.loads((directory / TARGETS_JSON).read_text(encoding="utf-8"))
            with np.load(directory / TARGETS_NPZ, allow_pickle=False) as arrays:
                audio_sets, class_sets, row_class = arrays["audio_sets"], arrays["class_sets"], arrays["row_class"]
            overlap, num_labels = meta.pop("overlap"), meta.pop("num_labels")
        normalize = meta.pop("normalize", "max")  # caches from before the choice existed used max
        return cls(audio_sets, class_sets, row_class, num_labels, overlap, meta, normalize)
