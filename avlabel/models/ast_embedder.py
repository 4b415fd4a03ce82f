"""Run the frozen AST inline, for users without an audio cache (paper Sec. 3.3).

Training normally reads AST embeddings from the audio cache. :class:`ASTEmbedder` computes
the same embedding on the fly from log-mel filterbanks: the mean of AST's two class tokens
([cls] and distillation) after its final LayerNorm, i.e. transformers' ``pooler_output``. The
AST stays frozen: its parameters never require gradients, it stays in eval mode whatever
``.train()`` is called with, and it is never registered inside the trainable model, so it is
not in the model's optimiser groups or checkpoints. Use it next to the model::

    embedder = ASTEmbedder.from_pretrained("MIT/ast-finetuned-audioset-10-10-0.4593")
    out = model(rgb=rgb, flow=flow, audio=embedder(filterbanks))
"""

from __future__ import annotations

import os

import torch
from torch import nn


class ASTEmbedder(nn.Module):
    """A frozen transformers AST: ``(B, max_length, num_mel_bins)`` features -> ``(B, hidden)`` embedding.

    Args:
        ast: A ``transformers.ASTModel`` or ``ASTForAudioClassification`` (its encoder is used).
    """

    def __init__(self, ast: nn.Module) -> None:
        super().__init__()
        self.ast = getattr(ast, "audio_spectrogram_transformer", ast)
        self.ast.requires_grad_(False)
        self.train(False)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str]) -> ASTEmbedder:
        """Load an AST checkpoint (hub id or local directory) with the audio pipeline's loader."""
        from avlabel.audio.ast import load_ast

        model, _ = load_ast(name_or_path)
        return cls(model)

    @property
    def embed_dim(self) -> int:
        """Width of the embedding (``hidden_size``; 768 for AST-base)."""
        return int(self.ast.config.hidden_size)

    def train(self, mode: bool = True) -> ASTEmbedder:
        """The AST is frozen: it stays in eval mode (no dropout) whatever ``mode`` is."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, max_length, num_mel_bins)`` normalised filterbanks -> ``(B, hidden)`` pooled embedding."""
        return self.ast(input_values=features).pooler_output
