"""Training items: a video clip, its cached audio, its relevance target, and the audio swap of 3.6.

`ClipAudio` turns the audio cache (frozen-AST embeddings, section 3.3) and the relevance
targets (section 3.5) of ``avlabel targets`` into per-manifest-row arrays: which cache row holds
each audio window, whether it has audible audio, and its target for the row's own class. For a
model that reads audio time tokens (AVT) it also reads each
window's tokens, their valid mask and energies (`avlabel.audio.tokens`); other models never
touch the token files.

`IntraClassAudioSwap` is the intra-class cross-modality augmentation (section 3.6): with
probability ``p`` a clip's audio, and with it the relevance target, is taken from another
training clip of the same class. Relevance, not audio-video correspondence, is what the
relevance network learns, so audio from any clip of the class is a valid pairing; and because a
target depends only on (audio, class), the donor's own target is the swapped sample's target.

`TrainingItems` assembles an item from ``(epoch, index)``: it seeds torch's generator
from ``(seed, epoch, index)`` before the video dataset draws its random clip offset, crop and
flip, and draws the swap from the same triple. An item is therefore a pure function of its
key, whichever worker process loads it and wherever an interrupted epoch was resumed; the
main process's own random state is left untouched (the seeding happens inside ``fork_rng``).

A clip the video dataset cannot read (corrupt file) becomes a zero-filled placeholder with
``valid`` False: the loss gives it weight 0, and batches keep their shape, so distributed ranks
stay in lock-step and ``torch.compile`` sees static shapes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from avlabel.errors import AvlabelError

# Stream ids that keep the random draws of one item independent of each other.
_VIDEO_STREAM, _AUDIO_STREAM = 0, 1


class ClipAudio:
    """Audio of the rows of one manifest split, looked up in an audio cache.

    Args:
        cache_dir: the ``avlabel targets -o DIR`` directory (audio cache + targets).
        video_ids: the split's video ids, in dataset row order.
        cache, targets: an opened `AudioCache` and
            `RelevanceTargets` of that directory.
        unreadable: video ids the cache lists as unreadable (they train without audio).

    Attributes:
        rows: ``(N, W)`` int64 cache row of every (video, window); ``-1`` for unreadable videos.
        present: ``(N, W)`` bool, the window holds audible audio.
        target: ``(N, W)`` float32 relevance target for the video's own class (0 without audio).
        dim: embedding width.
        token_shape: ``(count, token_dim)`` of the cache's time tokens, or None without tokens.
    """

    def __init__(self, cache_dir: str | os.PathLike[str], video_ids: list[str], cache, targets, unreadable: set[str]):
        self.cache_dir = Path(cache_dir)
        num_windows = cache.num_windows
        missing = [video_id for video_id in video_ids if video_id not in cache and video_id not in unreadable]
        if missing:
            raise AvlabelError(
                f"the audio cache {self.cache_dir} has no rows for {len(missing)} of {len(video_ids)} clips "
                f"(e.g. {', '.join(missing[:3])}); it was built for other items — run `avlabel targets` on this manifest"
            )
        windows = np.arange(num_windows)
        first = cache.lookup(video_ids, 0)  # (N,)
        self.rows = np.where(first[:, None] >= 0, first[:, None] + windows[None, :], -1)  # (N, W)
        flat = self.rows.reshape(-1)
        has_audio = cache.has_audio
        self.present = np.where(flat >= 0, has_audio[np.maximum(flat, 0)], False).reshape(self.rows.shape)
        target = np.zeros(flat.shape, np.float32)
        known = flat >= 0
        if known.any():
            if (targets.row_class[flat[known]] < 0).any():
                raise AvlabelError(
                    f"the relevance targets in {self.cache_dir} were computed for another manifest "
                    "(some cached clips have no class there); rerun `avlabel targets` with this manifest"
                )
            target[known] = targets.for_items(flat[known])
        self.target = np.where(self.present.reshape(-1), target, 0.0).astype(np.float32).reshape(self.rows.shape)
        self.dim = cache.dim
        grid = cache.header.get("tokens")
        self.token_shape = (grid["count"], grid["dim"]) if grid is not None else None
        self._cache = None  # opened lazily in each DataLoader worker (memory maps do not pickle cheaply)

    @property
    def num_windows(self) -> int:
        return self.rows.shape[1]

    def require_tokens(self, model_name: str) -> None:
        """Refuse, in one line naming the command that builds one, a cache without tokens for a token model."""
        if self.token_shape is None:
            from avlabel.audio.cache import missing_tokens_error

            raise missing_tokens_error(self.cache_dir, f"model {model_name!r} reads audio tokens (AVT)")

    def embedding(self, row: int, window: int) -> np.ndarray:
        """``(dim,)`` float32 embedding of (row, window); zeros without audio."""
        embedding, _ = self._opened().read([self.rows[row, window]])
        return embedding[0]

    def tokens(self, row: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Time tokens of (row, window): ``(count, token_dim)`` float32, ``(count,)`` bool valid, ``(count,)`` float32 energy."""
        tokens, valid, energy = self._opened().read_tokens([self.rows[row, window]])
        return tokens[0], valid[0], energy[0]

    def _opened(self):
        if self._cache is None:
            from avlabel.audio.cache import AudioCache

            self._cache = AudioCache(self.cache_dir)
        return self._cache

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": None}


class IntraClassAudioSwap:
    """Section 3.6: with probability ``p`` take the audio of another training clip of the same class.

    Args:
        labels: ``(N,)`` class of every training row.
        has_audio: ``(N,)`` bool, the row has audible audio in at least one window; only such
            rows donate (a clip without sound has no audio to lend).
        p: swap probability.
        seed: the run's seed.
    """

    def __init__(self, labels: np.ndarray, has_audio: np.ndarray, p: float, seed: int):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.p = float(p)
        self.seed = int(seed)
        self._donors: dict[int, np.ndarray] = {
            int(label): np.flatnonzero((self.labels == label) & has_audio) for label in np.unique(self.labels)
        }

    def donor(self, index: int, epoch: int) -> int:
        """The row whose audio row ``index`` uses in ``epoch`` (``index`` itself when not swapped)."""
        rng = np.random.default_rng([self.seed, epoch, index, _AUDIO_STREAM])
        if rng.random() >= self.p:
            return index
        donors = self._donors[int(self.labels[index])]
        others = donors[donors != index]
        if len(others) == 0:
            return index
        return int(others[rng.integers(len(others))])


class TrainingItems(Dataset):
    """Items ``{"rgb", "flow", "audio", "audio_present", "relevance", "label", "index", "valid", ...}``.

    Indexed by ``(epoch, index)`` pairs (from
    `ResumableDistributedSampler`). With ``audio_tokens`` the items also carry the audio window's
    ``audio_tokens`` ``(count, token_dim)`` float32, ``audio_token_valid`` ``(count,)`` bool and
    ``audio_token_energy`` ``(count,)`` float32, from the same (possibly swapped) clip and window
    as ``audio``.

    Args:
        labels: ``(N,)`` class index of every row.
        video_ids: video id of every row.
        clips: the split's `VideoClipDataset` (one view per row),
            or None for an audio-only model.
        audio: the split's `ClipAudio`, or None for models without audio.
        swap: the intra-class augmentation, or None.
        seed: the run's seed.
        placeholder_shapes: modality -> item tensor shape, for zero-filled unreadable clips.
        train: training items (random audio window) or validation items (first window).
        audio_tokens: add the audio time tokens (models that read them: AVT); the
            cache must hold them (`ClipAudio.require_tokens`).
    """

    def __init__(
        self,
        labels: np.ndarray,
        video_ids: list[str],
        clips,
        audio: ClipAudio | None,
        swap: IntraClassAudioSwap | None,
        seed: int,
        placeholder_shapes: dict[str, tuple[int, ...]],
        train: bool,
        audio_tokens: bool = False,
    ):
        assert clips is None or len(clips) == len(labels), (
            "one view per row: build the clip dataset with num_clips=num_crops=1"
        )
        self.labels = labels
        self.video_ids = video_ids
        self.clips = clips
        self.audio = audio
        self.swap = swap
        self.seed = int(seed)
        self.placeholder_shapes = placeholder_shapes
        self.train = train
        self.audio_tokens = audio_tokens and audio is not None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        item = {"label": int(self.labels[index]), "index": index, "video_id": self.video_ids[index]}
        if self.clips is not None:
            with torch.random.fork_rng(devices=[]):
                # The CPU generator only, which is all fork_rng(devices=[]) restores: torch.manual_seed
                # would also reseed (and leave reseeded) every CUDA generator, and costs a Python
                # stack trace per call for CUDA's lazy seeding.
                torch.default_generator.manual_seed(_item_seed(self.seed, epoch, index))
                item.update(self.clips[index])
        item["valid"] = "error" not in item
        if not item["valid"]:
            for modality, shape in self.placeholder_shapes.items():
                item[modality] = torch.zeros(shape)
        if self.audio is not None:
            source = self.swap.donor(index, epoch) if self.swap is not None else index
            window = self._window(epoch, index)
            item["audio"] = torch.from_numpy(self.audio.embedding(source, window))
            item["audio_present"] = bool(self.audio.present[source, window])
            item["relevance"] = float(self.audio.target[source, window])
            item["audio_source"] = source
            if self.audio_tokens:
                item.update(token_item(self.audio, source, window))
        return item

    def _window(self, epoch: int, index: int) -> int:
        """Training: a random audio window of the clip; validation: the first (single view)."""
        windows = self.audio.num_windows
        if not self.train or windows == 1:
            return 0
        rng = np.random.default_rng([self.seed, epoch, index, _AUDIO_STREAM, 1])
        return int(rng.integers(windows))


# The batch keys of the audio time tokens (see `token_item`), in the order they are stacked.
TOKEN_KEYS = ("audio_tokens", "audio_token_valid", "audio_token_energy")


def token_item(audio, row: int, window: int) -> dict[str, torch.Tensor]:
    """The three token entries of an item: ``audio`` (a `ClipAudio`, or anything with ``tokens``) at (row, window)."""
    return dict(zip(TOKEN_KEYS, map(torch.from_numpy, audio.tokens(row, window)), strict=True))


def collate_items(items: list[dict]) -> dict:
    """Stack `TrainingItems` items into a batch; unreadable clips are listed in ``skipped``."""
    batch: dict = {
        "skipped": [(item["index"], item["video_id"], item["error"]) for item in items if "error" in item],
        "video_id": [item["video_id"] for item in items],
    }
    for key in ("label", "index"):
        batch[key] = torch.tensor([item[key] for item in items], dtype=torch.int64)
    batch["valid"] = torch.tensor([item["valid"] for item in items], dtype=torch.bool)
    for key in ("rgb", "flow", "audio", *TOKEN_KEYS):
        if key in items[0]:
            batch[key] = torch.stack([item[key] for item in items])
    if "audio" in items[0]:
        batch["audio_present"] = torch.tensor([item["audio_present"] for item in items], dtype=torch.bool)
        batch["relevance"] = torch.tensor([item["relevance"] for item in items], dtype=torch.float32)
        batch["audio_source"] = torch.tensor([item["audio_source"] for item in items], dtype=torch.int64)
    return batch


def _item_seed(seed: int, epoch: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, index, _VIDEO_STREAM]).generate_state(1, np.uint64)[0] >> 1)
