"""A BERT encoder for inference in plain PyTorch, loaded from a Hugging Face checkpoint directory.

Why not ``transformers.BertModel``: importing transformers' modelling code costs about 4.5 s of
CPU (it pulls in ``torch._dynamo``, ``torch.distributed.tensor`` and scipy), more than embedding
every label of Kinetics-400 and AudioSet takes, so it alone would break the cold ``avlabel
savld`` budget. The encoder itself is small: embeddings, then ``num_hidden_layers`` post-norm
Transformer layers (Devlin et al. 2019, eq. 1 of Vaswani et al. 2017 for attention). Weights load
strictly through `filter_bert_state_dict`, and a test checks the vectors against
sentence-transformers (which runs ``transformers.BertModel``) to float precision.

Only what label embedding needs is supported: ``model_type == "bert"`` with absolute position
embeddings and a GELU or ReLU activation (all-MiniLM-L6-v2, bert-base-uncased and their kin);
`bert_encoder_supported` says whether a directory qualifies, and everything else goes
through sentence-transformers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from avlabel._io import load_tensors

_ACTIVATIONS = {
    "gelu": F.gelu,  # transformers' "gelu" is the exact (erf) form
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


@dataclass(frozen=True)
class BertConfig:
    """The fields of a transformers ``config.json`` the encoder reads (defaults are BERT-base's)."""

    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    @classmethod
    def from_json(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__ if raw.get(name) is not None})


def bert_encoder_supported(directory: Path) -> bool:
    """Whether ``directory`` holds a BERT checkpoint this encoder runs exactly like transformers."""
    try:
        raw = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        raw.get("model_type") == "bert"
        and raw.get("position_embedding_type", "absolute") == "absolute"
        and raw.get("hidden_act", "gelu") in _ACTIVATIONS
        and any((directory / name).is_file() for name in ("model.safetensors", "pytorch_model.bin"))
    )


class BertLayer(nn.Module):
    """Post-norm Transformer layer: ``h = LN(x + MHA(x))``, ``y = LN(h + W2 act(W1 h))``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.act = _ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)  # 3 × (B, H, L, d)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (B, H, L, d)
        x = self.norm1(x + self.proj(attended.transpose(1, 2).reshape(batch, length, width)))
        return self.norm2(x + self.fc2(self.act(self.fc1(x))))


class BertEncoder(nn.Module):
    """BERT's embeddings and encoder stack; returns the last hidden states ``(B, L, D)``.

    Inference only: there is no dropout and no pooler (sentence models pool the hidden states
    themselves).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.word_embed = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.pos_embed = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.type_embed = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        # Single-sentence inputs: every token has segment (token type) 0.
        x = self.norm(self.word_embed(input_ids) + self.pos_embed(positions) + self.type_embed.weight[0])  # (B, L, D)
        keep = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, L): padding is never attended to
        for layer in self.layers:
            x = layer(x, keep)
        return x


_RENAMES = {
    "embeddings.word_embeddings.": "word_embed.",
    "embeddings.position_embeddings.": "pos_embed.",
    "embeddings.token_type_embeddings.": "type_embed.",
    "embeddings.LayerNorm.": "norm.",
    "attention.output.dense.": "proj.",
    "attention.output.LayerNorm.": "norm1.",
    "intermediate.dense.": "fc1.",
    "output.dense.": "fc2.",
    "output.LayerNorm.": "norm2.",
}
# Parts of a transformers BERT checkpoint the encoder intentionally does not use.
_UNUSED = ("pooler.", "cls.", "embeddings.position_ids")


def filter_bert_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a transformers ``BertModel`` (or ``BertFor*``) state dict onto `BertEncoder`.

    Strips the ``bert.`` prefix of task models, drops the pooler and pre-training heads, renames
    TF-era ``gamma``/``beta`` LayerNorm parameters, and fuses each layer's query, key and value
    projections into one ``qkv`` matrix (one matmul instead of three).
    """
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = key.removeprefix("bert.")
        if key.startswith(_UNUSED):
            continue
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if key.startswith("encoder.layer."):
            index, rest = key.removeprefix("encoder.layer.").split(".", 1)
            key = f"layers.{index}.{rest}"
        for old, new in _RENAMES.items():
            key = key.replace(old, new)
        renamed[key] = value
    for key in [key for key in renamed if ".attention.self.query." in key]:
        prefix, suffix = key.split(".attention.self.query.")
        parts = [renamed.pop(f"{prefix}.attention.self.{name}.{suffix}") for name in ("query", "key", "value")]
        renamed[f"{prefix}.qkv.{suffix}"] = torch.cat(parts)
    return renamed


def load_bert_encoder(directory: Path) -> BertEncoder:
    """The encoder of a transformers BERT checkpoint directory (``config.json`` + weights), in eval mode."""
    model = BertEncoder(BertConfig.from_json(directory / "config.json"))
    if (directory / "model.safetensors").is_file():
        from safetensors.torch import load_file

        state_dict = load_file(directory / "model.safetensors")
    else:
        weights = directory / "pytorch_model.bin"
        state_dict = load_tensors(
            weights, f"BERT weights {weights}", "re-save the model with save_pretrained (model.safetensors)"
        )
    model.load_state_dict(filter_bert_state_dict(state_dict), strict=True)
    return model.eval()
