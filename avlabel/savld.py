"""The semantic audio-video label dictionary (SAVLD, paper section 3.1, Tables 1-2).

Every video label is embedded, every audio label is embedded, and each video label keeps its
``k`` nearest audio labels under a distance (cosine, Euclidean or Manhattan; Table 2). The rows
are overlapping clusters: one audio label may serve many video labels, so the dictionary is read
both ways (`Savld.audio_labels`, `Savld.video_labels`).

Two file formats, both lossless (``load_savld(save_savld(d))`` equals ``d``):

* ``.json`` -- everything: both label sets in full, neighbours, scores, provenance.
* ``.txt``/``.tsv`` -- the paper's text format: one row per video label, the video label
  followed by its ``k`` audio labels best first, then the ``k`` scores, all separated by TAB
  (labels contain commas -- AudioSet's "Chirp, tweet" -- but never tabs). Lines starting with
  ``#`` are the header: ``#savld <json>`` carries k, metric, provenance and the label sets
  (by name and hash when they are shipped sets, in full otherwise). ``cut -f1-11`` gives the
  paper's plain video-label-plus-10-audio-labels table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from avlabel import __version__
from avlabel._io import atomic_write_json, atomic_write_text
from avlabel.errors import AvlabelError, reading
from avlabel.labels import LabelSet, list_label_sets, load_label_set
from avlabel.labels.loading import shipped_dir

METRICS = ("cosine", "euclidean", "manhattan")
FORMAT_VERSION = 1
_TEXT_SUFFIXES = (".txt", ".tsv")
_TEXT_HEADER = "#savld "


@dataclass
class Savld:
    """A built dictionary: row ``v`` holds the ``k`` audio labels nearest to video label ``v``.

    Attributes:
        video: Video label set (rows).
        audio: Audio label set (``neighbours`` index into it).
        k: Audio labels kept per video label.
        metric: ``cosine`` (scores are similarities, higher is closer) or ``euclidean`` /
            ``manhattan`` (scores are distances, lower is closer).
        neighbours: ``(V, k)`` int64 indices into ``audio.labels``, best first.
        scores: ``(V, k)`` float32 similarity or distance matching ``neighbours``.
        provenance: How it was built (backend, model, metric, k, label-set names and hashes,
            tool version, out-of-vocabulary report).
    """

    video: LabelSet
    audio: LabelSet
    k: int
    metric: str
    neighbours: np.ndarray
    scores: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.neighbours = np.asarray(self.neighbours, dtype=np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float32)
        assert self.neighbours.shape == (len(self.video), self.k), self.neighbours.shape
        assert self.scores.shape == self.neighbours.shape, self.scores.shape
        assert self.metric in METRICS, self.metric
        assert self.neighbours.size == 0 or (self.neighbours.min() >= 0 and self.neighbours.max() < len(self.audio))

    @property
    def higher_is_closer(self) -> bool:
        """True for cosine similarity scores, False for distances."""
        return self.metric == "cosine"

    def audio_labels(self, video_label: str) -> list[tuple[str, float]]:
        """The ``k`` audio labels of ``video_label`` with their scores, best first."""
        row = self.video.index(video_label)
        return [(self.audio.labels[a], float(s)) for a, s in zip(self.neighbours[row], self.scores[row])]

    def video_labels(self, audio_label: str) -> list[tuple[str, float]]:
        """Every video label whose cluster contains ``audio_label``, closest first (the reverse map)."""
        column = self.audio.index(audio_label)
        rows, slots = np.nonzero(self.neighbours == column)
        found = [(self.video.labels[r], float(self.scores[r, s])) for r, s in zip(rows, slots)]
        found.sort(key=lambda pair: -pair[1] if self.higher_is_closer else pair[1])
        return found

    def check_label_sets(
        self, video: LabelSet | None = None, audio: LabelSet | None = None, source: str = "SAVLD"
    ) -> None:
        """Raise unless this dictionary was built from exactly these label sets (same order)."""
        for role, mine, theirs in (("video", self.video, video), ("audio", self.audio, audio)):
            if theirs is not None and mine.sha256 != theirs.sha256:
                raise AvlabelError(
                    f"{source} was built for {role} labels '{mine.name}' ({len(mine)} classes) but '{theirs.name}' "
                    f"({len(theirs)} classes) was given; rebuild it with 'avlabel savld --{role} {theirs.name}'"
                )


DEFAULT_SAVLD_FILE = "kinetics400-audioset-bert-k10-cosine.txt"


def default_savld_path() -> Path:
    """The prebuilt dictionary shipped in ``data_labels/savld/``: Kinetics-400 x AudioSet, the
    bundled all-MiniLM-L6-v2, k=10, cosine -- the paper's default configuration. ``avlabel
    inspect`` reads it when no ``--savld`` is given, so it answers offline in well under a
    second without loading a model; ``data_labels/savld/README.md`` gives the command that
    rebuilds it and a test checks that a fresh build still matches it."""
    return shipped_dir() / "savld" / DEFAULT_SAVLD_FILE


def _validate_request(audio: LabelSet, k: int, metric: str) -> None:
    if metric not in METRICS:
        raise AvlabelError(f"unknown metric '{metric}'; choose one of {', '.join(METRICS)}")
    if k <= 0 or k > len(audio):
        raise AvlabelError(f"k must be between 1 and {len(audio)} (the size of '{audio.name}'), got {k}")


def build_savld(
    video: LabelSet,
    audio: LabelSet,
    *,
    k: int = 10,
    metric: str = "cosine",
    backend: str = "bert",
    model: str | None = None,
    vectors: str | None = None,
    trust_vectors: bool = False,
    device: str | None = None,
    video_template: str | None = None,
    audio_template: str | None = None,
    use_cache: bool = True,
) -> Savld:
    """Build the dictionary: embed both label sets and keep each video label's k nearest audio labels.

    Args:
        video: Video label set (the dictionary's rows).
        audio: Audio label set (the candidates; use the set the audio tagger was trained on).
        k: Audio labels kept per video label.
        metric: ``cosine``, ``euclidean`` or ``manhattan``.
        backend: Name in `avlabel.embed.BACKENDS` (``bert``, ``glove``, ``word2vec``).
        model: Sentence model directory or hub id (``bert``).
        vectors: Word-vector file or gensim-data name (``glove``, ``word2vec``).
        trust_vectors: Allow vectors whose loading runs code: gensim pickles (``.kv``,
            ``.model``, ...) and gensim-data names (see `avlabel.embed.word_vectors`).
        device: Torch device for sentence models.
        video_template: Optional prompt for video phrases, e.g. ``"a video of {}"``.
        audio_template: Optional prompt for audio phrases, e.g. ``"the sound of {}"``.
        use_cache: Use the on-disk embedding cache.

    Raises:
        AvlabelError: bad k/metric/backend/template, unreadable vectors, or video labels none of
            whose words the word-vector model knows.
    """
    from avlabel.embed import create_embedder, embed_label_set
    from avlabel.labels.text import validate_template

    _validate_request(audio, k, metric)
    validate_template(video_template, "--video-template")
    validate_template(audio_template, "--audio-template")
    embedder = create_embedder(backend, model=model, vectors=vectors, device=device, trust_vectors=trust_vectors)
    video_emb = embed_label_set(video, embedder, video_template, use_cache=use_cache)
    audio_emb = embed_label_set(audio, embedder, audio_template, use_cache=use_cache)
    if video_emb.without_vector:
        missing = video_emb.without_vector
        raise AvlabelError(
            f"{len(missing)} {video.name} labels have no word known to the {backend} vectors "
            f"({', '.join(repr(m) for m in missing[:5])}{', ...' if len(missing) > 5 else ''}); "
            "use a larger vocabulary with --vectors or the bert backend"
        )
    # Audio labels without a vector cannot be matched; they drop out of the candidate pool.
    candidates = np.flatnonzero(~np.isnan(audio_emb.vectors).any(axis=1))
    if k > len(candidates):
        raise AvlabelError(
            f"k={k} but only {len(candidates)} {audio.name} labels have a vector under {backend}; lower --k"
        )
    neighbours, scores = _nearest(video_emb.vectors, audio_emb.vectors[candidates], k, metric)
    provenance = {
        "tool": "avlabel",
        "version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "backend": backend,
        "model": embedder.model_name,
        "metric": metric,
        "k": k,
        "video": _label_set_summary(video),
        "audio": _label_set_summary(audio),
        "video_template": video_template,
        "audio_template": audio_template,
        "unknown_words": {**video_emb.unknown_words, **audio_emb.unknown_words},
        "audio_without_vector": audio_emb.without_vector,
    }
    return Savld(video, audio, k, metric, candidates[neighbours], scores, provenance)


def _distances(queries: np.ndarray, pool: np.ndarray, metric: str) -> np.ndarray:
    """``(Q, P)`` distances, computed in float64 like scikit-learn's ``pairwise_distances``."""
    q, p = queries.astype(np.float64), pool.astype(np.float64)
    if metric == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        p = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
        return 1.0 - q @ p.T
    if metric == "euclidean":
        squared = (q * q).sum(1)[:, None] - 2.0 * (q @ p.T) + (p * p).sum(1)[None, :]
        return np.sqrt(np.maximum(squared, 0.0))
    # manhattan: (Q, P, D) differences in blocks of queries to bound memory (~64 MB a block).
    block = max(1, (8 << 20) // max(1, p.size))
    return np.concatenate([np.abs(q[i : i + block, None, :] - p[None]).sum(-1) for i in range(0, len(q), block)])


def _nearest(queries: np.ndarray, pool: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact k-nearest pool rows per query and their scores, closest first.

    The same brute-force search as scikit-learn's ``NearestNeighbors(algorithm="brute")`` (tests
    check they agree), done in numpy because importing scikit-learn alone takes longer than the
    whole warm-cache build is allowed to. Ties break towards the lower audio index.
    """
    distances = _distances(queries, pool, metric)
    order = np.lexsort((np.broadcast_to(np.arange(pool.shape[0]), distances.shape), distances), axis=1)[:, :k]
    nearest = np.take_along_axis(distances, order, axis=1)
    # Report cosine as a similarity (1 - distance) so that higher means closer.
    scores = 1.0 - nearest if metric == "cosine" else nearest
    return order.astype(np.int64), scores.astype(np.float32)


def _label_set_summary(label_set: LabelSet) -> dict[str, Any]:
    return {"name": label_set.name, "size": len(label_set), "sha256": label_set.sha256}


def compare_savld(a: Savld, b: Savld) -> list[tuple[str, float]]:
    """Per-video-label Jaccard overlap of two dictionaries' audio sets (the Table 2 ablation).

    Returns ``(video_label, jaccard)`` in video class order; both dictionaries must share their
    label sets (``k``, metric and backend may differ).
    """
    b.check_label_sets(a.video, a.audio, source="the second SAVLD")
    overlaps = []
    for row, label in enumerate(a.video.labels):
        first, second = set(a.neighbours[row].tolist()), set(b.neighbours[row].tolist())
        overlaps.append((label, len(first & second) / len(first | second)))
    return overlaps


# --- files ---------------------------------------------------------------------------------


def save_savld(savld: Savld, path: str | Path) -> Path:
    """Write ``savld`` atomically as JSON (``.json``) or the paper's text format (``.txt``/``.tsv``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        atomic_write_json(path, _to_json(savld))
    elif suffix in _TEXT_SUFFIXES:
        atomic_write_text(path, _to_text(savld))
    else:
        raise AvlabelError(f"cannot tell the SAVLD format from '{path.name}'; end the file name in .json or .txt")
    return path


def load_savld(path: str | Path, video: LabelSet | None = None, audio: LabelSet | None = None) -> Savld:
    """Read a dictionary written by `save_savld`; optionally check its label sets.

    Raises:
        AvlabelError: missing or corrupt file, or label sets other than ``video``/``audio``.
    """
    path = Path(path)
    if path.is_dir():
        raise AvlabelError(f"SAVLD file '{path}' is a folder; pass the .json or .txt file 'avlabel savld -o' wrote")
    if not path.is_file():
        raise AvlabelError(f"SAVLD file '{path}' does not exist; build one with 'avlabel savld -o {path.name}'")
    with reading(f"SAVLD file '{path}'", "rebuild it with 'avlabel savld'"):
        text = path.read_text(encoding="utf-8")
    try:
        savld = _from_text(text) if text.startswith(_TEXT_HEADER) else _from_json(json.loads(text))
    except AvlabelError as error:
        raise AvlabelError(f"SAVLD file '{path}': {error}") from error
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise AvlabelError(
            f"SAVLD file '{path}' is corrupt or not a SAVLD ({type(error).__name__}: {error}); rebuild it with 'avlabel savld'"
        ) from error
    savld.check_label_sets(video, audio, source=f"SAVLD file '{path}'")
    return savld


def _label_set_to_json(label_set: LabelSet, full: bool) -> dict[str, Any]:
    data = _label_set_summary(label_set)
    if full:
        data["labels"] = list(label_set.labels)
        data["ids"] = None if label_set.ids is None else list(label_set.ids)
    return data


def _label_set_from_json(data: dict[str, Any]) -> LabelSet:
    if "labels" in data:
        ids = data.get("ids")
        label_set = LabelSet(data["name"], tuple(data["labels"]), None if ids is None else tuple(ids))
    else:
        label_set = load_label_set(data["name"])
    if label_set.sha256 != data["sha256"]:
        raise AvlabelError(
            f"its {data['name']} labels differ from the ones it was built with (content hash mismatch); rebuild it"
        )
    return label_set


def _is_shipped(label_set: LabelSet) -> bool:
    return label_set.name in list_label_sets() and load_label_set(label_set.name).sha256 == label_set.sha256


def _to_json(savld: Savld) -> dict[str, Any]:
    return {
        "format": "avlabel-savld",
        "format_version": FORMAT_VERSION,
        "k": savld.k,
        "metric": savld.metric,
        "video": _label_set_to_json(savld.video, full=True),
        "audio": _label_set_to_json(savld.audio, full=True),
        "provenance": savld.provenance,
        "rows": [
            {
                "video": label,
                "audio": [savld.audio.labels[a] for a in savld.neighbours[row]],
                "indices": savld.neighbours[row].tolist(),
                # float(float32) is exact in a double, and JSON round-trips doubles exactly.
                "scores": [float(s) for s in savld.scores[row]],
            }
            for row, label in enumerate(savld.video.labels)
        ],
    }


def _from_json(data: dict[str, Any]) -> Savld:
    if data.get("format") != "avlabel-savld":
        raise AvlabelError(
            'it is not an avlabel SAVLD (no "format": "avlabel-savld"); rebuild it with \'avlabel savld\''
        )
    _check_version(data)
    video, audio = _label_set_from_json(data["video"]), _label_set_from_json(data["audio"])
    rows = data["rows"]
    if [row["video"] for row in rows] != list(video.labels):
        raise AvlabelError("its rows do not follow its video label order; rebuild it")
    neighbours = np.array([row["indices"] for row in rows], dtype=np.int64)
    scores = np.array([row["scores"] for row in rows], dtype=np.float32)
    return _checked(video, audio, data["k"], data["metric"], neighbours, scores, data["provenance"])


def _checked(video, audio, k, metric, neighbours, scores, provenance) -> Savld:
    """A Savld from file contents, with every invariant verified (files may be hand-edited)."""
    if metric not in METRICS:
        raise AvlabelError(f"unknown metric '{metric}'; rebuild it")
    if not isinstance(k, int) or not 1 <= k <= len(audio):
        raise AvlabelError(f"k={k!r} is not between 1 and {len(audio)}; rebuild it")
    if neighbours.shape != (len(video), k) or scores.shape != (len(video), k):
        raise AvlabelError(
            f"it does not hold {k} audio labels and scores for each of {len(video)} video labels; rebuild it"
        )
    if neighbours.size and (neighbours.min() < 0 or neighbours.max() >= len(audio)):
        raise AvlabelError(f"an audio index lies outside 0..{len(audio) - 1}; rebuild it")
    return Savld(video, audio, k, metric, neighbours, scores, provenance)


def _check_version(header: dict[str, Any]) -> None:
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise AvlabelError(
            f"it was written by a newer avlabel (format {header['format_version']}); upgrade avlabel to read it"
        )


def _format_score(score: np.float32) -> str:
    # The shortest decimal that reads back as the same float32: lossless and readable.
    return np.format_float_positional(np.float32(score), unique=True, trim="0")


def _to_text(savld: Savld) -> str:
    if any(label.startswith("#") for label in savld.video.labels):
        raise AvlabelError(
            "a video label starts with '#', which the text format reserves for its header; save as .json"
        )
    header = {
        "format_version": FORMAT_VERSION,
        "k": savld.k,
        "metric": savld.metric,
        "video": _label_set_to_json(savld.video, full=not _is_shipped(savld.video)),
        "audio": _label_set_to_json(savld.audio, full=not _is_shipped(savld.audio)),
        "provenance": savld.provenance,
    }
    score_kind = "similarity" if savld.higher_is_closer else "distance"
    lines = [
        _TEXT_HEADER + json.dumps(header, ensure_ascii=False),
        (
            f"# one row per video label: the label, its {savld.k} audio labels best first, then their {savld.k} "
            f"{savld.metric} {score_kind} scores; TAB-separated"
        ),
    ]
    for row, label in enumerate(savld.video.labels):
        fields = [label]
        fields += [savld.audio.labels[a] for a in savld.neighbours[row]]
        fields += [_format_score(s) for s in savld.scores[row]]
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


def _from_text(text: str) -> Savld:
    lines = text.splitlines()
    header = json.loads(lines[0][len(_TEXT_HEADER) :])
    _check_version(header)
    k = int(header["k"])
    video, audio = _label_set_from_json(header["video"]), _label_set_from_json(header["audio"])
    rows = [line.split("\t") for line in lines[1:] if line and not line.startswith("#")]
    if [fields[0] for fields in rows] != list(video.labels):
        raise AvlabelError("its rows do not follow its video label order; rebuild it")
    if any(len(fields) != 1 + 2 * k for fields in rows):
        raise AvlabelError(f"a row does not hold 1 video label, {k} audio labels and {k} scores; rebuild it")
    neighbours = np.array([[audio.index(name) for name in fields[1 : k + 1]] for fields in rows], dtype=np.int64)
    scores = np.array([[float(s) for s in fields[k + 1 :]] for fields in rows], dtype=np.float32)
    return _checked(video, audio, k, header["metric"], neighbours, scores, header["provenance"])
