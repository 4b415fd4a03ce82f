"""The audio bottleneck AB (paper Sec. 3.3): the trainable bridge from the frozen AST.

The AST is frozen, so its pooled embedding still speaks AudioSet; AB maps it into the
video model's embedding space: LayerNorm -> Linear -> ReLU -> Linear -> ReLU.
"""

from __future__ import annotations

import torch
from torch import nn


class AudioBottleneck(nn.Module):
    """LN -> Linear -> ReLU -> Linear -> ReLU over the cached (or inline) AST embedding.

    Args:
        audio_dim: Width of the AST embedding (768 for AST-base).
        hidden_dim: Width after the first linear layer.
        out_dim: Output width, the fusion width D of the video streams.
    """

    def __init__(self, audio_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(audio_dim)
        self.fc1 = nn.Linear(audio_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)
        self.act = nn.ReLU()

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``(B, audio_dim)`` AST embedding (any float dtype, e.g. fp16 from the cache) -> ``(B, out_dim)``."""
        x = self.norm(audio.to(self.norm.weight.dtype))
        return self.act(self.fc2(self.act(self.fc1(x))))
