"""The audio token stream of AVT: cached audio tokens through their own Transformer blocks.

The audio cache holds, per audio window, ``N_a`` tokens of width ``D_a`` (the frozen AST's last
hidden state pooled over frequency, one token per time step; or log-mel patches on the CPU path)
and a valid mask: AST pads every clip to 1,024 frames, and tokens that lie in that padding (or
every token of a clip without audio) are invalid. The stream

* standardises each token with a LayerNorm (AST's tokens are layer-normed already, log-mel
  patches are raw filterbank values) and projects it from ``D_a`` to the model width ``D``;
* replaces the tokens chosen for masked audio modelling by a learned mask token (BEiT/SimMIM
  style: the encoder keeps every position, so shapes stay static and the stream can meet the
  bottleneck at every layer);
* prepends a class token and adds a learned position embedding over the ``1 + N_a`` positions
  (linearly resampled when a cache holds another number of tokens);
* runs timm ``Block``s whose attention never reads an invalid token: invalid tokens are masked
  out as keys through the boolean ``attn_mask`` of timm's Block (SDPA underneath). As queries
  they still compute values that no valid token reads and no loss uses, which keeps the batch
  rectangular. Invalid tokens are zeroed before the projection: a masked key gets attention
  weight 0, but 0 x NaN is NaN, so whatever a cache holds in padding must not enter the matmul.

The class token and any bottleneck tokens are always valid keys, so no attention row is empty.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from avlabel.models.video_vit import build_blocks

# ViT's LayerNorm (eps=1e-6), as in the video streams, so ViT block weights load unchanged.


class AudioTokenStream(nn.Module):
    """Audio tokens -> LayerNorm -> Linear -> [class token; tokens] + position -> timm blocks.

    Parameter names follow timm's ``VisionTransformer`` where they mean the same thing
    (``cls_token``, ``pos_embed``, ``blocks``, ``norm``), so the blocks can start from an image
    ViT as MBT's spectrogram stream does.

    Args:
        token_dim: Width ``D_a`` of a cached audio token.
        num_tokens: Tokens ``N_a`` per window the position embedding is learned for.
        embed_dim: Model width D.
        depth: Number of blocks (the video streams' depth, so layers pair up for fusion).
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width as a multiple of ``embed_dim``.
        qkv_bias: Bias in the query/key/value projections.
        drop_path_rate: Stochastic depth of the last block; earlier blocks get linearly less.
        attn_drop_rate: Dropout on attention weights.
        proj_drop_rate: Dropout after projections.
        mask_token: Learn a mask token for masked audio modelling.
    """

    def __init__(
        self,
        token_dim: int,
        num_tokens: int,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        mask_token: bool = False,
    ) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.input_norm = nn.LayerNorm(token_dim)
        self.proj = nn.Linear(token_dim, embed_dim)
        self.cls_token = nn.Parameter(torch.empty(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.empty(1, 1 + num_tokens, embed_dim))
        self.mask_token = nn.Parameter(torch.empty(1, 1, embed_dim)) if mask_token else None
        self.blocks = build_blocks(
            [Block] * depth, embed_dim, num_heads, mlp_ratio, qkv_bias, drop_path_rate, attn_drop_rate, proj_drop_rate
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)  # timm ViT's final norm, as the blocks'

    def init_weights(self) -> None:
        """ViT's embedding initialisation (the blocks' linear layers are set by the model's scheme)."""
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.mask_token is not None:
            trunc_normal_(self.mask_token, std=0.02)

    def _pos_embed(self, num_tokens: int) -> torch.Tensor:
        """``(1, 1 + N, D)``: the learned embedding, its token part linearly resampled if N differs."""
        if num_tokens == self.num_tokens:
            return self.pos_embed
        tokens = F.interpolate(self.pos_embed[:, 1:].transpose(1, 2), size=num_tokens, mode="linear")
        return torch.cat([self.pos_embed[:, :1], tokens.transpose(1, 2)], dim=1)

    def forward_embed(
        self, tokens: torch.Tensor, valid: torch.Tensor, token_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, N_a, D_a)`` cached tokens -> ``(B, 1 + N_a, D)`` input of the first block.

        Args:
            tokens: The cached audio tokens (any float dtype, e.g. float16 from the cache).
            valid: ``(B, N_a)`` bool, False for padding (its values are replaced by zeros).
            token_mask: ``(B, N_a)`` bool, True for tokens replaced by the mask token (masked
                audio modelling), or None.
        """
        tokens = torch.where(valid.unsqueeze(-1), tokens, torch.zeros((), dtype=tokens.dtype, device=tokens.device))
        x = self.proj(self.input_norm(tokens.to(self.proj.weight.dtype)))  # (B, N_a, D)
        if token_mask is not None:
            x = torch.where(token_mask.unsqueeze(-1), self.mask_token.to(x.dtype), x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        return torch.cat([cls, x], dim=1) + self._pos_embed(x.shape[1])

    @staticmethod
    def key_mask(valid: torch.Tensor, extra: int = 0) -> torch.Tensor:
        """The attention mask of ``(B, N_a)`` valid tokens: ``(B, 1, 1, 1 + N_a + extra)`` bool.

        True where a key may be read: the class token, the valid tokens and ``extra`` tokens
        appended after them (the bottleneck); broadcast over heads and queries by SDPA.
        """
        batch = valid.shape[0]
        always = valid.new_ones(batch, 1)
        keys = torch.cat([always, valid, always.expand(batch, extra)], dim=1)
        return keys[:, None, None, :]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """The stream's classification embedding: its class token."""
        return x[:, 0]  # (B, D)
