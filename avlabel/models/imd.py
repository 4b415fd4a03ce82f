"""Learnable irrelevant modality dropout, IMD (paper Sec. 3.4, Fig. 4, Eqs. 4-8).

A relevance network scores how relevant the clip's audio is to what is seen (Eq. 4). In
masking mode "M" the score is thresholded at alpha: below it the audio embedding is
multiplied by exactly zero, above it by the score (Eq. 5); in weighting mode "W" every clip's
audio is multiplied by its score (the M/W ablation of Table 4). The scaled audio embedding is
concatenated with the visual one and fused by MLP(LN(.)) (Eqs. 6-8).

Dropped audio contributes nothing to the fused embedding and receives exactly zero gradient
from it: the masked branch goes through ``torch.where``, so even non-finite audio values of a
dropped or absent clip cannot leak into the logits or their gradient.
"""

from __future__ import annotations

import torch
from timm.layers import Mlp
from torch import nn

from avlabel.models.outputs import FusedEmbedding


class RelevanceNetwork(nn.Module):
    """Eq. 4: ``rev = sigmoid(w^T (MLP(LN(z)) + z) + b)`` with ``z = [audio; visual]``.

    The residual sum keeps the width of ``z``; a final linear layer turns it into the one
    relevance logit per clip that the sigmoid (and the BCE relevance loss) need.

    Args:
        in_dim: Width of the concatenated audio and visual embeddings.
        hidden_dim: Hidden width of the MLP.
    """

    def __init__(self, in_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.mlp = Mlp(in_features=in_dim, hidden_features=hidden_dim)
        self.score = nn.Linear(in_dim, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, in_dim)`` -> ``(B,)`` relevance logit."""
        return self.score(self.mlp(self.norm(z)) + z).squeeze(-1)


class GatedAudioFusion(nn.Module):
    """Eqs. 6-8 given the audio gate: ``z_av = MLP(LN([delta * audio; visual]))``.

    Audio whose ``keep`` is False enters as exact zeros through ``torch.where`` (no value and no
    gradient leaks from it). IMD chooses ``delta`` with its relevance network; the random
    ``drop_pathway`` baseline with a coin, on these same layers. Subclasses call
    `build_fusion` in their constructor (after their own gate's layers, which fixes the
    order in which the weights are initialised).
    """

    def build_fusion(self, dim: int) -> None:
        """The LayerNorm and MLP of Eq. 8 for embeddings of width ``dim``."""
        self.norm = nn.LayerNorm(2 * dim)
        self.fuse = Mlp(in_features=2 * dim, hidden_features=dim, out_features=dim)

    def fuse_gated(
        self, visual: torch.Tensor, audio: torch.Tensor, delta: torch.Tensor, keep: torch.Tensor
    ) -> torch.Tensor:
        """``(B, D)`` visual and audio, ``(B,)`` gate and keep mask -> ``(B, D)`` fused embedding."""
        kept_audio = torch.where(keep.unsqueeze(-1), audio * delta.unsqueeze(-1), torch.zeros_like(audio))
        z = torch.cat([kept_audio, visual], dim=-1)  # Eqs. 6-7
        return self.fuse(self.norm(z))  # Eq. 8


class IMDFusion(GatedAudioFusion):
    """IMD fusion head (Eqs. 4-8): relevance network, thresholded audio mask, MLP(LN(.)) fusion.

    Args:
        dim: Width D of the audio and visual embeddings and of the fused output.
        alpha: Relevance threshold of Eq. 5 (0.25 in the paper's best setting, Table 4).
        mode: ``"M"`` to drop audio whose relevance is below ``alpha`` (Eq. 5) or ``"W"`` to
            weight every clip's audio by its relevance (Table 4's weighting variant).
    """

    def __init__(self, dim: int, alpha: float = 0.25, mode: str = "M") -> None:
        super().__init__()
        assert mode in ("M", "W"), mode  # validated by ModelConfig
        self.alpha = alpha
        self.mode = mode
        self.relevance = RelevanceNetwork(2 * dim, dim)
        self.build_fusion(dim)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor, present: torch.Tensor) -> FusedEmbedding:
        """Fuse one clip's audio and visual embeddings.

        Args:
            visual: ``(B, D)`` visual classification embedding.
            audio: ``(B, D)`` audio bottleneck output.
            present: ``(B,)`` bool, False for clips without audio (dropped like irrelevant audio).
        """
        rev_logit = self.relevance(torch.cat([audio, visual], dim=-1))  # Eq. 4
        rev = torch.sigmoid(rev_logit)
        keep = present & (rev >= self.alpha) if self.mode == "M" else present
        delta = torch.where(keep, rev, torch.zeros_like(rev))  # Eq. 5
        z_av = self.fuse_gated(visual, audio, delta, keep)  # Eqs. 6-8
        return FusedEmbedding(z=z_av, rev=rev, rev_logit=rev_logit, delta=delta, keep=keep)
