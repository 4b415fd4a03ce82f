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
_IDENTITY = ("format", "version", "dim", "num_labels", "labels_sha256", "windows", "embedder", "tokens")
STORE = "audio"  # the name of a cache's lock and shard staging files (avlabel._shard_folder)


def cache_arrays(header: dict) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Every per-row array a cache with ``header`` stores: file name -> (little-endian dtype, shape of one row).

    The one list the reader maps, the writer appends to and truncates, and a merge of shard
    caches copies (`AudioCacheWriter.copy_video`): an array added here is carried everywhere.
    """
    arrays = {EMBEDDING: (np.dtype("<f2"), (header["dim"],))}
    if header["num_labels"]:
        arrays[PROBS] = (np.dtype("<f2"), (header["num_labels"],))
    arrays[STATUS] = (np.dtype("u1"), ())
    tokens = header.get("tokens")
    if tokens is not None:
        arrays[TOKENS] = (np.dtype("<f2"), (tokens["count"], tokens["dim"]))
        arrays[TOKEN_LENGTH] = (np.dtype("<u2"), ())
        arrays[TOKEN_ENERGY] = (np.dtype("<f4"), (tokens["count"],))
    return arrays


def cache_identity(
    embedder_identity: dict, dim: int, labels: Sequence[str] | None, windows: dict, tokens: dict | None = None
) -> dict:
    """The header fields that say what a cache's rows are; caches (or shards of one) can share rows iff they agree."""
    return {
        "format": _FORMAT,
        "version": _VERSION_WITH_TOKENS if tokens is not None else _VERSION_WITHOUT_TOKENS,
        "dim": int(dim),
        "num_labels": len(labels) if labels is not None else 0,
        "labels_sha256": labels_sha256(labels) if labels is not None else None,
        "windows": windows,
        "embedder": embedder_identity,
        **({"tokens": tokens} if tokens is not None else {}),  # version 1 headers have no such key
    }


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
        arrays: every per-row array by file name (`cache_arrays`), memory-mapped.
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
            raise missing_cache_error(self.directory)
        self.header = _read_header(header_path)
        rows = self.header["rows"]
        self.dim = self.header["dim"]
        self.num_windows = self.header["windows"]["count"]
        self.video_ids, self.windows = _read_index(self.directory / INDEX, self.header["index_bytes"], rows)
        self._first_row = {video_id: row for row, video_id in reversed(list(enumerate(self.video_ids)))}
        self.arrays = {
            name: _memmap(self.directory / name, dtype, (rows, *shape))
            for name, (dtype, shape) in cache_arrays(self.header).items()
        }
        self.embedding, self.status = self.arrays[EMBEDDING], self.arrays[STATUS]
        self.probs = self.arrays.get(PROBS)
        self.tokens = self.arrays.get(TOKENS)
        self.token_length, self.token_energy = self.arrays.get(TOKEN_LENGTH), self.arrays.get(TOKEN_ENERGY)

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

    def check_sources(
        self, records: Sequence, manifest: str | os.PathLike[str] | None, fix: str, store: str | None = None
    ) -> None:
        """Refuse if cached videos of ``records`` were computed from other files (see `avlabel.data.sources`).

        ``store``: the cache as the message names it (default ``audio cache DIR``).
        """
        from avlabel.data.sources import check_sources

        cached = [record for record in records if record.video_id in self]
        store = store or f"audio cache {self.directory}"
        check_sources(self.directory / SOURCES, cached, manifest, store=store, fix=fix)

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
        self._open(Path(directory), cache_identity(embedder_identity, dim, labels, windows, tokens))

    @classmethod
    def with_identity(cls, directory: str | os.PathLike[str], identity: dict) -> AudioCacheWriter:
        """A writer for a cache whose rows are ``identity`` (`cache_identity`, or another cache's header)."""
        writer = cls.__new__(cls)
        writer._open(Path(directory), {key: identity[key] for key in _IDENTITY if key in identity})
        return writer

    def _open(self, directory: Path, wanted: dict) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = file_lock(self.directory / _LOCK, busy=_busy(self.directory))
        header_path = self.directory / HEADER
        if header_path.is_file():
            self.header = _read_header(header_path)
            check_compatible(self.header, wanted, self.directory)
        else:
            self.header = {**wanted, "rows": 0, "index_bytes": 0}
        self._files = {
            name: dtype.itemsize * int(np.prod(shape)) for name, (dtype, shape) in cache_arrays(self.header).items()
        }
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
        given = {EMBEDDING: embedding, PROBS: probs, STATUS: status}
        if tokens is not None:
            given.update({TOKENS: tokens.tokens, TOKEN_LENGTH: tokens.length, TOKEN_ENERGY: tokens.energy})
        self._write_video(video_id, given)

    def copy_video(self, cache: AudioCache, video_id: str) -> None:
        """Stage the rows of ``video_id`` from another cache with the same identity (a shard's), every array of it."""
        first = cache._first_row[video_id]
        rows = slice(first, first + self.header["windows"]["count"])
        self._write_video(video_id, {name: array[rows] for name, array in cache.arrays.items()})

    def _write_video(self, video_id: str, arrays: dict[str, np.ndarray | None]) -> None:
        """Append one video's rows of every array of `cache_arrays` (all must be given) and its index lines."""
        count = self.header["windows"]["count"]
        if "\t" in video_id or "\n" in video_id or "\r" in video_id:
            raise AvlabelError(f"video_id {video_id!r} contains a tab or line break; rename it in the manifest")
        assert video_id not in self.done, f"{video_id} is already cached"
        for name, (dtype, shape) in cache_arrays(self.header).items():
            values = arrays.get(name)
            assert values is not None and values.shape == (count, *shape), (
                name,
                None if values is None else values.shape,
            )
            self._handles[name].write(np.ascontiguousarray(values, dtype=dtype).tobytes())
        self._handles[INDEX].write("".join(f"{video_id}\t{window}\n" for window in range(count)).encode("utf-8"))
        self.done.add(video_id)
        self.video_ids.extend([video_id] * count)

    def commit(self) -> None:
        """Make everything appended so far durable and visible to readers."""
        for handle in self._handles.values():
            handle.flush()
            os.fsync(handle.fileno())
        self.header.update(rows=len(self.video_ids), index_bytes=self._handles[INDEX].tell())
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


def check_not_writing(directory: str | os.PathLike[str]) -> None:
    """Refuse up front, before anything is computed or created, a cache another process is writing."""
    lock = Path(directory) / _LOCK
    if lock.is_file():
        file_lock(lock, busy=_busy(directory)).close()


def _busy(directory) -> str:
    return f"another process is writing the audio cache in {directory}; wait for it to finish"


def missing_cache_error(directory: str | os.PathLike[str]) -> AvlabelError:
    """The refusal of a folder without a cache: shards of a split still to finish, or no cache at all."""
    from avlabel._shard_folder import describe_shards, missing_shards

    waiting = missing_shards(directory, STORE)
    if waiting:
        return AvlabelError(
            f"no audio cache in {directory} yet: shards {describe_shards(waiting)} of the `avlabel targets` split "
            f"writing it have not finished; run them (avlabel targets ... --shard I/N -o {directory}), the last to "
            "finish merges the cache"
        )
    return AvlabelError(
        f"no audio cache in {directory} (missing {HEADER}); build it with: avlabel targets ... -o {directory}"
    )


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
    return {video_id for video_id, _, _ in read_bad_item_rows(directory)}


def read_bad_item_rows(directory: str | os.PathLike[str]) -> list[tuple[str, str, str]]:
    """``(video_id, path, reason)`` of every item listed in ``directory``'s ``audio_bad_items.tsv``."""
    path = Path(directory) / BAD_ITEMS
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return [
            (row["video_id"], row.get("path") or "", row.get("reason") or "") for row in rows if row.get("video_id")
        ]


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


def check_compatible(found: dict, wanted: dict, directory: Path) -> None:
    """Refuse to add rows of identity ``wanted`` (`cache_identity`) to the cache in ``directory`` (header ``found``)."""
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
