"""On-disk cache of phrase embeddings, so a second SAVLD build never loads a model.

One ``.npz`` file per (backend, model fingerprint) under ``<cache_dir>/embeddings/``; inside,
``texts`` and ``vectors`` (float32) are parallel arrays and ``oov`` holds, per text, the words a
word-vector backend did not know (space-joined; empty for sentence encoders). The model
fingerprint changes whenever the model files change (see `path_fingerprint`), so a stale
entry can never be served. Files are rewritten atomically; a corrupt file is ignored and
replaced rather than trusted.

Several builds may share the cache (two ``avlabel savld`` runs at once). A write therefore
happens under an exclusive lock on ``.<file>.lock`` and merges: it re-reads the file, keeps
the entries other processes added since this one loaded it, adds its own and writes the union,
so no build's entries are lost to another's rewrite.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from avlabel._io import atomic_path, file_lock
from avlabel._paths import cache_dir


def path_fingerprint(path: Path) -> str:
    """Cheap identity of a model file or directory: resolved path, sizes and modification times."""
    path = path.resolve()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    digest = hashlib.sha256(str(path).encode())
    for file in files:
        stat = file.stat()
        digest.update(f"{file.relative_to(path) if file != path else ''}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


class EmbeddingCache:
    """Text -> (vector, out-of-vocabulary words) for one backend and model.

    Args:
        backend: Backend name (``"bert"``, ``"glove"``, ``"word2vec"``).
        model_key: A string that changes whenever the model's output could change.
        root: Cache directory (default: ``avlabel._paths.cache_dir() / "embeddings"``).
    """

    def __init__(self, backend: str, model_key: str, root: Path | None = None) -> None:
        root = root if root is not None else cache_dir() / "embeddings"
        key = hashlib.sha256(f"{backend}\0{model_key}".encode()).hexdigest()[:24]
        self.path = root / backend / f"{key}.npz"
        self._rows: dict[str, int] = {}
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._oov: list[str] = []
        self._load()

    def _load(self) -> None:
        stored = self._read_file()
        if stored is not None:
            self._add(*stored)

    def _read_file(self) -> tuple[list[str], np.ndarray, list[str]] | None:
        """``(texts, vectors, oov)`` on disk, or None when the file is absent or damaged."""
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as data:
                texts = [str(t) for t in data["texts"]]
                vectors = np.asarray(data["vectors"], dtype=np.float32)
                oov = [str(o) for o in data["oov"]]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            return None  # a damaged cache is a miss, not an error: it is rebuilt on the next put()
        if len(texts) != len(vectors) or len(texts) != len(oov) or vectors.ndim != 2:
            return None
        return texts, vectors, oov

    def _add(self, texts: list[str], vectors: np.ndarray, oov: list[str]) -> None:
        """Append the entries whose text is not cached yet (``oov`` space-joined per text)."""
        if self._vectors.size and self._vectors.shape[1] != vectors.shape[1]:
            return  # vectors of another width cannot belong to this model; never mix them
        new = [i for i, text in enumerate(texts) if text not in self._rows]
        if not new:
            return
        start = len(self._rows)
        for offset, i in enumerate(new):
            self._rows[texts[i]] = start + offset
        added = vectors[new]
        self._vectors = added if not self._vectors.size else np.concatenate([self._vectors, added])
        self._oov.extend(oov[i] for i in new)

    def missing(self, texts: list[str]) -> list[str]:
        """Texts not yet cached, de-duplicated, in first-seen order."""
        return list(dict.fromkeys(t for t in texts if t not in self._rows))

    def get(self, texts: list[str]) -> tuple[np.ndarray, list[list[str]]]:
        """Vectors ``(N, D)`` and per-text unknown words for texts that are all cached."""
        rows = [self._rows[t] for t in texts]
        return self._vectors[rows], [self._oov[r].split() for r in rows]

    def put(self, texts: list[str], vectors: np.ndarray, oov: list[list[str]]) -> None:
        """Add new entries and rewrite the cache file atomically, merged with what others wrote."""
        assert not any(text in self._rows for text in texts), "put() only takes texts missing from the cache"
        vectors = np.asarray(vectors, dtype=np.float32)
        if self._vectors.size and self._vectors.shape[1] != vectors.shape[1]:
            self._rows, self._vectors, self._oov = {}, np.zeros((0, vectors.shape[1]), np.float32), []
        self._add(list(texts), vectors, [" ".join(words) for words in oov])
        try:
            with file_lock(self.path.with_name(f".{self.path.name}.lock")):
                stored = self._read_file()  # what other processes added since this one loaded the file
                if stored is not None:
                    self._add(*stored)
                with atomic_path(self.path) as tmp, open(tmp, "wb") as handle:
                    np.savez(
                        handle,
                        texts=np.array(list(self._rows), dtype=str),
                        vectors=self._vectors,
                        oov=np.array(self._oov, dtype=str),
                    )
        except OSError:
            # A read-only cache directory slows the next run down but must not fail this one.
            pass
