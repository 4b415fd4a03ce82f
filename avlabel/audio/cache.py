"""The audio cache: per-window AST embeddings, AudioSet probabilities, audio flags and (optionally) time tokens on disk.

AST is frozen (paper section 3.3), so its outputs are computed once per clip and read back by
every training epoch. The cache is a directory of flat binary arrays plus a small JSON header,
memory-mapped by readers (a random batch of rows costs a few page reads, nothing is loaded up
front) and appended to by one writer at a time.

On-disk layout (``DIR`` is the ``-o`` directory of ``avlabel targets``)::

    DIR/audio_cache.json      header; the single source of truth (rewritten atomically)
    DIR/audio_index.tsv       one line per row: "<video_id>\\t<window>\\n" (UTF-8)
    DIR/audio_embedding.f16   float16, C order, shape (rows, dim)          -- little-endian
    DIR/audio_probs.f16       float16, C order, shape (rows, num_labels)   -- absent without a tagger
    DIR/audio_status.u8       uint8, shape (rows,): AudioStatus code (0 OK, 1 no audio stream,
                              2 empty window, 3 silent window); has_audio = (status == 0)
    DIR/audio_tokens.f16      float16, shape (rows, count, token_dim): time tokens   -- with tokens only
    DIR/audio_token_length.u16  uint16, shape (rows,): valid tokens (a prefix)        -- with tokens only
    DIR/audio_token_energy.f32  float32, shape (rows, count): energy per token         -- with tokens only
    DIR/audio_bad_items.tsv   video_id, path, reason of the items the last run could not read
    DIR/audio_sources.tsv     the file each video was computed from (name, size, bounds, manifest);
                              see avlabel.data.sources: readers refuse another dataset's videos
    DIR/.audio_cache.lock     advisory lock held by the writing process

``audio_cache.json`` holds ``rows`` and ``index_bytes`` (how much of the data files and of the
index is committed), ``dim``, ``num_labels``, ``labels_sha256`` (sha256 of the class names of the
probability columns joined by newlines, i.e. ``LabelSet.sha256`` of the SAVLD's audio label set;
column ``j`` is class ``j``), ``windows`` (``count``, ``seconds``, ``sample_rate``) and
``embedder`` (its identity: name, checkpoint, fingerprint, filterbank).

Versions. Time tokens (`avlabel.audio.tokens`: AVT's audio input) are optional, because
they dominate the size (AST-base: 101 x 768 x 2 bytes = 155 kB per window, 37 GB for one
window of Kinetics-400's 240k training clips, against 2.6 kB per window without). A cache
without tokens is format version 1 -- exactly what avlabel wrote before tokens existed, so every
version of avlabel reads and extends it. A cache with tokens is version 2: its header adds
``tokens`` (``count``, ``dim``, ``patch``, ``stride``, ``max_length`` and ``silence_energy``, the
energy of a token without audio), and the three token files grow with the others. An avlabel
that knows only version 1 refuses it instead of appending rows without tokens. Rows without
audible audio have zero tokens, valid length 0 and the silence energy.

Row mapping. Every video is stored as ``windows.count`` consecutive rows, windows ``0..W-1`` in
order; row ``r`` belongs to line ``r`` of the index. `AudioCache.lookup` maps
``(video_id, window)`` to rows (``-1`` for videos not in the cache, e.g. unreadable files). With
``W`` audio windows and a video clip ``clip_index`` out of ``num_clips`` uniformly spaced test
clips, the matching window is ``clip_index * W // num_clips``. Rows whose status is not 0 have an
all-zero embedding and probabilities; their relevance target is 0 by definition. The target of
row ``r`` for video class ``c`` comes from `RelevanceTargets`,
stored next to the cache (``targets.npz`` + ``targets.json``)::

    targets = RelevanceTargets.load(DIR)
    targets.for_items(rows)          # each row against its own video's class
    targets.pairs(rows, classes)     # row j against classes[j] (e.g. audio borrowed within a class)
    targets.matrix(rows, classes)    # every row against every class

Crash safety. A commit appends whole videos to the data files and the index, flushes and fsyncs
them, then atomically replaces the header with the new ``rows``/``index_bytes``. Bytes past the
committed sizes (a run killed mid-append) are invisible to readers and truncated away by the next
writer, so a rerun after ``kill -9`` at any instant continues with no torn or duplicated rows.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from avlabel._io import atomic_write_json, atomic_write_text, file_lock
from avlabel.errors import AvlabelError

HEADER = "audio_cache.json"
INDEX = "audio_index.tsv"
EMBEDDING = "audio_embedding.f16"
PROBS = "audio_probs.f16"
STATUS = "audio_status.u8"
TOKENS = "audio_tokens.f16"
TOKEN_LENGTH = "audio_token_length.u16"
TOKEN_ENERGY = "audio_token_energy.f32"
BAD_ITEMS = "audio_bad_items.tsv"
SOURCES = "audio_sources.tsv"
_LOCK = ".audio_cache.lock"
_FORMAT = "avlabel-audio-cache"
_VERSION_WITHOUT_TOKENS, _VERSION_WITH_TOKENS = 1, 2


class TokenRows(NamedTuple):
    """The time tokens of some windows, as the cache stores them."""

    tokens: np.ndarray  # (W, count, token_dim) float16
    length: np.ndarray  # (W,) valid tokens of each window (a prefix), uint16
    energy: np.ndarray  # (W, count) float32 energy of each token


class AudioCache:
    """Read-only, memory-mapped view of a committed audio cache.

    Args:
        directory: the cache directory (``-o`` of ``avlabel targets``).

    Attributes:
        embedding: ``(rows, dim)`` float16 memmap.
        probs: ``(rows, num_labels)`` float16 memmap, or None when the embedder predicts no tags.
        status: ``(rows,)`` uint8 memmap of `AudioStatus` codes.
        tokens, token_length, token_energy: ``(rows, count, token_dim)`` float16,
            ``(rows,)`` uint16 and ``(rows, count)`` float32 memmaps, or None for a cache
            without tokens (see `read_tokens`).
        video_ids: video id of every row; ``windows``: ``(rows,)`` window index of every row.
        num_windows: windows per video; ``dim``; ``header``: the parsed ``audio_cache.json``.
    """

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        header_path = self.directory / HEADER
        if not header_path.is_file():
            raise AvlabelError(
                f"no audio cache in {self.directory} (missing {HEADER}); build it with: avlabel targets ... -o {self.directory}"
            )
        self.header = _read_header(header_path)
        rows = self.header["rows"]
        self.dim = self.header["dim"]
        self.num_windows = self.header["windows"]["count"]
        self.video_ids, self.windows = _read_index(self.directory / INDEX, self.header["index_bytes"], rows)
        self._first_row = {video_id: row for row, video_id in reversed(list(enumerate(self.video_ids)))}
        self.embedding = _memmap(self.directory / EMBEDDING, np.float16, (rows, self.dim))
        num_labels = self.header["num_labels"]
        self.probs = _memmap(self.directory / PROBS, np.float16, (rows, num_labels)) if num_labels else None
        self.status = _memmap(self.directory / STATUS, np.uint8, (rows,))
        self.tokens = self.token_length = self.token_energy = None
        tokens = self.header.get("tokens")
        if tokens is not None:
            self.tokens = _memmap(self.directory / TOKENS, np.float16, (rows, tokens["count"], tokens["dim"]))
            self.token_length = _memmap(self.directory / TOKEN_LENGTH, np.uint16, (rows,))
            self.token_energy = _memmap(self.directory / TOKEN_ENERGY, np.float32, (rows, tokens["count"]))

    def __len__(self) -> int:
        return len(self.video_ids)

    def __contains__(self, video_id: str) -> bool:
        return video_id in self._first_row

    @property
    def has_audio(self) -> np.ndarray:
        """``(rows,)`` bool: the window holds audible audio."""
        return np.asarray(self.status) == 0

    def lookup(self, video_ids: Sequence[str], window: int | Sequence[int] | np.ndarray = 0) -> np.ndarray:
        """Rows of ``(video_id, window)`` pairs; ``-1`` where the video is not in the cache.

        ``window`` is one index for all videos or one per video.
        """
        windows = np.broadcast_to(np.asarray(window, dtype=np.int64), (len(video_ids),))
        if len(windows) and (windows.min() < 0 or windows.max() >= self.num_windows):
            raise ValueError(
                f"window indices must lie in [0, {self.num_windows}), got {windows.min()}..{windows.max()}"
            )
        first = np.array([self._first_row.get(video_id, -1) for video_id in video_ids], dtype=np.int64)
        return np.where(first >= 0, first + windows, -1)

    def check_sources(self, records: Sequence, manifest: str | os.PathLike[str] | None, fix: str) -> None:
        """Refuse if cached videos of ``records`` were computed from other files (see `avlabel.data.sources`)."""
        from avlabel.data.sources import check_sources

        cached = [record for record in records if record.video_id in self]
        check_sources(self.directory / SOURCES, cached, manifest, store=f"audio cache {self.directory}", fix=fix)

    def read(self, rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and audio flags of ``rows`` (``-1`` rows read as zero and no audio).

        Returns:
            ``(embedding, has_audio)``: ``(n, dim)`` float32 and ``(n,)`` bool.
        """
        rows = np.asarray(rows, dtype=np.int64)
        present = rows >= 0
        safe = np.where(present, rows, 0)
        if len(self) == 0:
            return np.zeros((len(rows), self.dim), np.float32), np.zeros(len(rows), bool)
        embedding = self.embedding[safe].astype(np.float32) * present[:, None]
        return embedding, (self.status[safe] == 0) & present

    @property
    def has_tokens(self) -> bool:
        return self.tokens is not None

    def check_tokens(self, reader: str) -> None:
        """Refuse a cache without time tokens for ``reader`` (e.g. "model 'avt_tiny' reads audio tokens")."""
        if not self.has_tokens:
            raise missing_tokens_error(self.directory, reader)

    def read_tokens(self, rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Time tokens of ``rows`` (``-1`` rows read as windows without audio); see `avlabel.audio.tokens`.

        Returns:
            ``(tokens, valid, energy)``: ``(n, count, token_dim)`` float32, ``(n, count)`` bool
            (the token lies in the window's audio) and ``(n, count)`` float32.
        """
        self.check_tokens("its tokens were asked for")
        rows = np.asarray(rows, dtype=np.int64)
        present = rows >= 0
        grid = self.header["tokens"]
        count = grid["count"]
        tokens = np.zeros((len(rows), count, grid["dim"]), np.float32)
        length = np.zeros(len(rows), np.int64)
        energy = np.full((len(rows), count), grid["silence_energy"], np.float32)
        if present.any():
            cached = rows[present]
            tokens[present] = self.tokens[cached]
            length[present] = self.token_length[cached]
            energy[present] = self.token_energy[cached]
        return tokens, np.arange(count)[None, :] < length[:, None], energy


class AudioCacheWriter:
    """Appends whole videos to a cache directory and commits them crash-safely (see module docs).

    Args:
        directory: cache directory (created if needed).
        embedder_identity: the embedder's ``identity`` dict; an existing cache built by another
            embedder, window layout or label set is refused rather than mixed.
        dim: embedding size.
        labels: class names of the probability columns, in order, or None (no probabilities).
        windows: ``{"count", "seconds", "sample_rate"}``.
        tokens: the ``tokens`` header section (``count``, ``dim``, ``patch``, ``stride``,
            ``max_length``, ``silence_energy``) to store time tokens, or None. A cache cannot gain
            or lose tokens: its rows would not all have them.

    Only one writer may hold a directory (an advisory lock); use as a context manager.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        embedder_identity: dict,
        dim: int,
        labels: Sequence[str] | None,
        windows: dict,
        tokens: dict | None = None,
    ):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = file_lock(
            self.directory / _LOCK,
            busy=f"another process is writing the audio cache in {self.directory}; wait for it to finish",
        )
        wanted = {
            "format": _FORMAT,
            "version": _VERSION_WITH_TOKENS if tokens is not None else _VERSION_WITHOUT_TOKENS,
            "dim": int(dim),
            "num_labels": len(labels) if labels is not None else 0,
            "labels_sha256": labels_sha256(labels) if labels is not None else None,
            "windows": windows,
            "embedder": embedder_identity,
            **({"tokens": tokens} if tokens is not None else {}),  # version 1 headers have no such key
        }
        header_path = self.directory / HEADER
        if header_path.is_file():
            self.header = _read_header(header_path)
            _check_compatible(self.header, wanted, self.directory)
        else:
            self.header = {**wanted, "rows": 0, "index_bytes": 0, "created": _now(), "updated": _now()}
        self._files = {EMBEDDING: int(dim) * 2, STATUS: 1}
        if wanted["num_labels"]:
            self._files[PROBS] = wanted["num_labels"] * 2
        if tokens is not None:
            self._files.update(
                {TOKENS: tokens["count"] * tokens["dim"] * 2, TOKEN_LENGTH: 2, TOKEN_ENERGY: tokens["count"] * 4}
            )
        self._recover()
        self.video_ids, _ = _read_index(self.directory / INDEX, self.header["index_bytes"], self.header["rows"])
        self.done = set(self.video_ids)
        self._handles = {name: open(self.directory / name, "ab") for name in (*self._files, INDEX)}  # noqa: SIM115 - closed in close()
        atomic_write_json(header_path, self.header)

    def _recover(self) -> None:
        """Cut every file back to its committed size (drops a killed run's uncommitted tail)."""
        rows = self.header["rows"]
        for name, row_bytes in self._files.items():
            _truncate(self.directory / name, rows * row_bytes)
        _truncate(self.directory / INDEX, self.header["index_bytes"])

    def append(
        self,
        video_id: str,
        embedding: np.ndarray,
        probs: np.ndarray | None,
        status: np.ndarray,
        tokens: TokenRows | None = None,
    ) -> None:
        """Stage the windows of one video (``(W, dim)``, ``(W, num_labels)``, ``(W,)``, tokens); see `commit`."""
        count = self.header["windows"]["count"]
        if "\t" in video_id or "\n" in video_id or "\r" in video_id:
            raise AvlabelError(f"video_id {video_id!r} contains a tab or line break; rename it in the manifest")
        assert embedding.shape == (count, self.header["dim"]) and status.shape == (count,)
        assert video_id not in self.done, f"{video_id} is already cached"
        self._handles[EMBEDDING].write(np.ascontiguousarray(embedding, dtype="<f2").tobytes())
        if PROBS in self._files:
            assert probs is not None and probs.shape == (count, self.header["num_labels"])
            self._handles[PROBS].write(np.ascontiguousarray(probs, dtype="<f2").tobytes())
        self._handles[STATUS].write(np.ascontiguousarray(status, dtype=np.uint8).tobytes())
        if TOKENS in self._files:
            grid = self.header["tokens"]
            assert tokens is not None and tokens.tokens.shape == (count, grid["count"], grid["dim"])
            self._handles[TOKENS].write(np.ascontiguousarray(tokens.tokens, dtype="<f2").tobytes())
            self._handles[TOKEN_LENGTH].write(np.ascontiguousarray(tokens.length, dtype="<u2").tobytes())
            self._handles[TOKEN_ENERGY].write(np.ascontiguousarray(tokens.energy, dtype="<f4").tobytes())
        self._handles[INDEX].write("".join(f"{video_id}\t{window}\n" for window in range(count)).encode("utf-8"))
        self.done.add(video_id)
        self.video_ids.extend([video_id] * count)

    def commit(self) -> None:
        """Make everything appended so far durable and visible to readers."""
        for handle in self._handles.values():
            handle.flush()
            os.fsync(handle.fileno())
        self.header.update(rows=len(self.video_ids), index_bytes=self._handles[INDEX].tell(), updated=_now())
        atomic_write_json(self.directory / HEADER, self.header)

    def write_bad_items(self, bad_items: Sequence[tuple[str, str, str]]) -> None:
        """List the items of this run that could not be read (``video_id, path, reason``)."""
        lines = ["video_id\tpath\treason"] + ["\t".join(_one_line(field) for field in item) for item in bad_items]
        atomic_write_text(self.directory / BAD_ITEMS, "\n".join(lines) + "\n")

    def close(self) -> None:
        """Commit and release the directory."""
        if self._handles:
            self.commit()
            for handle in self._handles.values():
                handle.close()
            self._handles = {}
        if self._lock is not None:
            self._lock.close()  # closing the descriptor releases the flock
            self._lock = None

    def __enter__(self) -> AudioCacheWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def missing_tokens_error(directory: str | os.PathLike[str], reader: str) -> AvlabelError:
    """The refusal of a cache without time tokens for ``reader``, with the command that builds one."""
    return AvlabelError(
        f"the audio cache {directory} holds no audio tokens (built without --tokens, or before avlabel stored them) "
        f"but {reader}; build a cache with tokens into a new folder: avlabel targets --tokens ... -o NEW_DIR "
        "(same --manifest, --savld and embedder)"
    )


def holds_tokens(directory: str | os.PathLike[str]) -> bool:
    """Whether the cache in ``directory`` stores time tokens (False when there is no cache yet)."""
    path = Path(directory) / HEADER
    return path.is_file() and "tokens" in _read_header(path)


def read_bad_items(directory: str | os.PathLike[str]) -> set[str]:
    """Video ids the last extraction into ``directory`` could not read (they train and evaluate without audio)."""
    path = Path(directory) / BAD_ITEMS
    if not path.is_file():
        return set()
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["video_id"] for row in csv.DictReader(handle, delimiter="\t") if row.get("video_id")}


def labels_sha256(labels: Sequence[str]) -> str:
    """sha256 of class names in order (one per line): the ``labels_sha256`` of the header."""
    return hashlib.sha256("\n".join(labels).encode("utf-8")).hexdigest()


def _read_header(path: Path) -> dict:
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AvlabelError(
            f"{path} is not valid JSON; delete the cache directory's audio_* files and rebuild it"
        ) from None
    if header.get("format") != _FORMAT:
        raise AvlabelError(f"{path} is not an avlabel audio cache; rebuild it with avlabel targets")
    version = header.get("version")
    if version not in (_VERSION_WITHOUT_TOKENS, _VERSION_WITH_TOKENS):
        raise AvlabelError(
            f"{path} is an audio cache of format version {version!r}, which this avlabel cannot read (it reads "
            f"{_VERSION_WITHOUT_TOKENS} and {_VERSION_WITH_TOKENS}); upgrade avlabel or rebuild it with avlabel targets"
        )
    if (version == _VERSION_WITH_TOKENS) != isinstance(header.get("tokens"), dict):
        raise AvlabelError(
            f"{path} is damaged (format version {version} {'without' if version == _VERSION_WITH_TOKENS else 'with'} "
            "a tokens section); delete the cache directory's audio_* files and rebuild it"
        )
    return header


def _read_index(path: Path, committed_bytes: int, rows: int) -> tuple[list[str], np.ndarray]:
    if committed_bytes == 0:
        return [], np.zeros(0, dtype=np.int64)
    with open(path, "rb") as handle:
        text = handle.read(committed_bytes).decode("utf-8")
    video_ids, windows = [], []
    for line in text.splitlines():
        video_id, window = line.split("\t")
        video_ids.append(video_id)
        windows.append(int(window))
    if len(video_ids) != rows:
        raise AvlabelError(
            f"{path} has {len(video_ids)} committed rows but {HEADER} says {rows}; the cache is damaged — rebuild it"
        )
    return video_ids, np.asarray(windows, dtype=np.int64)


def _memmap(path: Path, dtype, shape: tuple[int, ...]) -> np.ndarray:
    if shape[0] == 0:  # numpy cannot map an empty file
        return np.zeros(shape, dtype=dtype)
    needed = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if not path.is_file() or path.stat().st_size < needed:
        raise AvlabelError(f"{path} is shorter than {HEADER} promises; the cache is damaged — rebuild it")
    return np.memmap(path, dtype=np.dtype(dtype).newbyteorder("<"), mode="r", shape=shape)


def _truncate(path: Path, size: int) -> None:
    if path.exists():
        if path.stat().st_size > size:
            os.truncate(path, size)
        elif path.stat().st_size < size:
            raise AvlabelError(
                f"{path} lost committed data (shorter than {HEADER} says); delete the cache and rebuild it"
            )
    elif size:
        raise AvlabelError(f"{path} is missing but {HEADER} lists committed rows; delete the cache and rebuild it")


def _check_compatible(found: dict, wanted: dict, directory: Path) -> None:
    found_tokens, wanted_tokens = found.get("tokens"), wanted.get("tokens")
    if found_tokens is None and wanted_tokens is not None:
        raise AvlabelError(
            f"the audio cache in {directory} holds no audio tokens, so --tokens cannot add to it (its rows would "
            "lack them); use another output directory, or delete its audio_* files to rebuild it with tokens"
        )
    if found_tokens is not None and wanted_tokens is None:
        raise AvlabelError(
            f"the audio cache in {directory} holds audio tokens, so --no-tokens cannot add to it (new rows would "
            "lack them); drop --no-tokens, or use another output directory"
        )
    for key in ("dim", "num_labels", "labels_sha256", "windows", "embedder", "tokens"):
        if _without_source(found.get(key)) != _without_source(wanted.get(key)):
            raise AvlabelError(
                f"the audio cache in {directory} was built with a different {key} ({found.get(key)} != {wanted.get(key)}); "
                "use another output directory or delete its audio_* files to rebuild"
            )


def _without_source(value):
    # Where a checkpoint was loaded from is provenance, not identity: a moved directory (or a hub
    # id vs. its local copy) still produces the same rows, which the fingerprint tells.
    return {k: v for k, v in value.items() if k != "source"} if isinstance(value, dict) else value


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
