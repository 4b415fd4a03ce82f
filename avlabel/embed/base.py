"""The one interface every text-embedding backend implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class TextEmbedder(Protocol):
    """Maps phrases to vectors. Implementations load their model lazily, on the first
    `embed` call, so a build served entirely from the embedding cache never loads it.

    Attributes:
        backend: Registry name (``"bert"``, ``"glove"``, ``"word2vec"``).
        model_name: Human-readable model identity recorded in SAVLD provenance.
        model_key: Changes whenever the vectors could change; keys the embedding cache.
    """

    backend: str
    model_name: str
    model_key: str

    def embed(self, texts: list[str]) -> tuple[np.ndarray, list[list[str]]]:
        """Vectors ``(N, D)`` float32 and, per text, the words the model does not know.

        A text with no known word at all gets a row of NaN (word-vector backends only).
        """
        ...
