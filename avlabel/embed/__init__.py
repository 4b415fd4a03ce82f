"""Text-embedding backends behind one interface (`TextEmbedder`), chosen by name.

``BACKENDS`` maps a backend name to a factory ``(model, vectors, device, trust_vectors) ->
TextEmbedder``; factories validate their options and load nothing heavy until the first
``embed`` call. ``trust_vectors`` allows word-vector sources whose loading runs code (gensim
pickles, gensim-data downloads); nothing else ever loads a pickle.
"""

from __future__ import annotations

from collections.abc import Callable

from avlabel.embed.base import TextEmbedder
from avlabel.embed.label_embeddings import LabelEmbeddings, embed_label_set
from avlabel.embed.sentence import create_sentence_embedder
from avlabel.embed.word_vectors import create_glove_embedder, create_word2vec_embedder
from avlabel.errors import AvlabelError

BACKENDS: dict[str, Callable[..., TextEmbedder]] = {
    "bert": create_sentence_embedder,
    "glove": create_glove_embedder,
    "word2vec": create_word2vec_embedder,
}


def create_embedder(
    backend: str = "bert",
    *,
    model: str | None = None,
    vectors: str | None = None,
    device: str | None = None,
    trust_vectors: bool = False,
) -> TextEmbedder:
    """The embedder for ``backend`` configured with ``--model`` / ``--vectors`` / ``--device`` / ``--trust-vectors``."""
    factory = BACKENDS.get(backend)
    if factory is None:
        raise AvlabelError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    return factory(model=model, vectors=vectors, device=device, trust_vectors=trust_vectors)


__all__ = ["BACKENDS", "LabelEmbeddings", "TextEmbedder", "create_embedder", "embed_label_set"]
