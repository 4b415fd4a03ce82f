"""Embed a whole label set: normalise each label into phrases, embed them (through the on-disk
cache), and average the phrases of a label into one vector (section 3.1's label embeddings)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avlabel.embed.base import TextEmbedder
from avlabel.embed.cache import EmbeddingCache
from avlabel.labels import LabelSet
from avlabel.labels.text import apply_template, label_phrases


@dataclass
class LabelEmbeddings:
    """One vector per label of ``label_set``.

    Attributes:
        label_set: The labels, in class-index order.
        vectors: ``(N, D)`` float32; a NaN row marks a label none of whose words the model knows.
        phrases: The exact texts embedded for each label (normalised, templated).
        unknown_words: Label -> words the model did not know (only labels that had some).
    """

    label_set: LabelSet
    vectors: np.ndarray
    phrases: tuple[tuple[str, ...], ...]
    unknown_words: dict[str, list[str]]

    @property
    def without_vector(self) -> list[str]:
        """Labels that got no vector (every word unknown)."""
        missing = np.isnan(self.vectors).any(axis=1)
        return [label for label, gone in zip(self.label_set.labels, missing) if gone]


def _embed_cached(embedder: TextEmbedder, texts: list[str], use_cache: bool) -> tuple[np.ndarray, list[list[str]]]:
    if not use_cache:
        return embedder.embed(texts)
    cache = EmbeddingCache(embedder.backend, embedder.model_key)
    missing = cache.missing(texts)
    if missing:
        vectors, unknown = embedder.embed(missing)
        cache.put(missing, vectors, unknown)
    return cache.get(texts)


def embed_label_set(
    label_set: LabelSet, embedder: TextEmbedder, template: str | None = None, use_cache: bool = True
) -> LabelEmbeddings:
    """Embed every label of ``label_set`` with ``embedder``.

    Args:
        label_set: Labels to embed.
        embedder: Any backend from `avlabel.embed.BACKENDS`.
        template: Optional prompt such as ``"the sound of {}"`` wrapped around every phrase.
        use_cache: Read and fill the on-disk embedding cache (keyed by backend, model and text).
    """
    phrases = tuple(tuple(apply_template(p, template) for p in label_phrases(label)) for label in label_set)
    texts = list(dict.fromkeys(text for label_texts in phrases for text in label_texts))
    vectors, unknown = _embed_cached(embedder, texts, use_cache)
    row_of = {text: i for i, text in enumerate(texts)}
    label_vectors = np.full((len(label_set), vectors.shape[1]), np.nan, dtype=np.float32)
    unknown_words: dict[str, list[str]] = {}
    for i, (label, label_texts) in enumerate(zip(label_set, phrases)):
        rows = [row_of[text] for text in label_texts]
        known = [r for r in rows if not np.isnan(vectors[r]).any()]
        if known:
            label_vectors[i] = vectors[known].mean(axis=0)
        words = sorted({word for r in rows for word in unknown[r]})
        if words:
            unknown_words[label] = words
    return LabelEmbeddings(label_set, label_vectors, phrases, unknown_words)
