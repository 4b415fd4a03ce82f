"""One stream of the two-stream video Transformer (paper Sec. 3.2, Fig. 3, Eqs. 1-3).

A stream is a ViT applied to T frames. The first ``depth - space_time_blocks`` blocks are
timm ``Block``s run on every frame separately (frames folded into the batch, weights shared
across frames, Eq. 2). The last ``space_time_blocks`` blocks first attend across time at each
spatial position, pass the result through a linear layer (LR) and the residual, and then run
the ordinary spatial attention and MLP (Eq. 3; divided attention as in TimeSformer).

How the classification token travels: the stream has one learnable classification token.
Every frame carries its own copy of it, so in the spatial blocks each frame is exactly an
image ViT input (class token + N patches). In the space-time blocks the T copies sit at
spatial position 0 and attend to each other in the temporal attention like any patch
position; the spatial attention then lets each copy read its frame's patches. After the final
LayerNorm the video embedding is the mean of the T copies. With the temporal embedding and LR
at zero (their initial values) a stream therefore computes exactly the image model's class
embedding averaged over frames, which is what ImageNet initialisation relies on.

All tensors keep the layout ``(B, T, S, D)`` with ``S = 1 + N`` tokens per frame; folding
frames or spatial positions into the batch is a reshape, never a Python loop.

Bottleneck fusion (AVT, `avlabel.models.avt`). A block can also run with ``K`` bottleneck
tokens ``z`` (``forward_with_bottleneck``): every frame's *spatial* attention runs over the
frame's ``S`` tokens plus its own copy of ``z``, so each frame reads from and writes to the
bottleneck, and the stream's update of ``z`` is the mean of the ``T`` updated copies. The
temporal attention of a space-time block stays among the frame tokens (the bottleneck has no
time axis, and its ``T`` copies are identical when the block starts). For masked video
modelling a stream may own a learned mask token that replaces the patch embedding of masked
tubes (the same patch position in every frame) before the position embeddings are added.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from timm.layers import DropPath, PatchEmbed, trunc_normal_

# Both live in vision_transformer in every timm 1.x (Attention moved to timm.layers later).
from timm.models.vision_transformer import Attention, Block
from torch import nn
from torch.utils.checkpoint import checkpoint

from avlabel.models.config import ModelConfig

# ViT's LayerNorm (eps=1e-6), so image checkpoints reproduce their features exactly.
_LayerNorm = partial(nn.LayerNorm, eps=1e-6)
IN_CHANS = {"rgb": 3, "flow": 2}  # input channels of each visual stream


class SpaceBlock(Block):
    """A ViT block applied to each frame on its own (Eq. 2): attention never mixes frames."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, S, D)
        return self.forward_with_bottleneck(x, None)[0]

    def forward_with_bottleneck(
        self, x: torch.Tensor, bottleneck: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The block on ``(B, T, S, D)`` frames, each frame attending also to ``(B, K, D)`` bottleneck tokens.

        Returns:
            The updated frames and this stream's update of the bottleneck, the mean over frames
            of each frame's updated copy ``(B, K, D)`` (None without a bottleneck).
        """
        batch, frames, tokens = x.shape[:3]
        x = rearrange(x, "b t s d -> (b t) s d")  # frames folded into the batch
        if bottleneck is not None:
            x = torch.cat([x, repeat(bottleneck, "b k d -> (b t) k d", t=frames)], dim=1)  # (B·T, S + K, D)
        x = super().forward(x)
        update = None
        if bottleneck is not None:
            x, copies = x[:, :tokens], x[:, tokens:]
            update = reduce(copies, "(b t) k d -> b k d", "mean", b=batch)
        return rearrange(x, "(b t) s d -> b t s d", b=batch), update


class SpaceTimeBlock(SpaceBlock):
    """Divided space-time block (Eq. 3): temporal attention -> LR -> residual, then a ViT block.

    The spatial attention and MLP keep the names of timm's ``Block`` (``norm1``, ``attn``,
    ``norm2``, ``mlp``) so image weights load into them directly; the temporal branch adds
    ``norm_time``, ``attn_time`` and ``time_fc`` (LR). ``time_fc`` starts at zero, making the
    block an image block until training moves it.

    Args:
        dim: Token width D.
        num_heads: Attention heads, shared by the temporal and spatial attention.
        mlp_ratio: MLP hidden width as a multiple of ``dim``.
        qkv_bias: Bias in the query/key/value projections.
        proj_drop: Dropout after the attention and MLP projections.
        attn_drop: Dropout on the attention weights.
        drop_path: Stochastic-depth rate of the block's residual branches.
        norm_layer: Normalisation layer type.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_layer: type[nn.Module] = _LayerNorm,
    ) -> None:
        super().__init__(
            dim,
            num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            proj_drop=proj_drop,
            attn_drop=attn_drop,
            drop_path=drop_path,
            norm_layer=norm_layer,
        )
        self.norm_time = norm_layer(dim)
        self.attn_time = Attention(
            dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop
        )
        self.time_fc = nn.Linear(dim, dim)  # LR of Eq. 3
        self.drop_path_time = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def init_weights(self) -> None:
        # LR at zero: the temporal branch adds nothing until trained (image-model equivalence).
        nn.init.zeros_(self.time_fc.weight)
        nn.init.zeros_(self.time_fc.bias)

    def forward_temporal(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, S, D)
        """Temporal attention -> LR -> residual (the first half of Eq. 3)."""
        batch = x.shape[0]
        xt = rearrange(x, "b t s d -> (b s) t d")  # each spatial position attends across time
        xt = self.time_fc(self.attn_time(self.norm_time(xt)))
        return x + self.drop_path_time(rearrange(xt, "(b s) t d -> b t s d", b=batch))

    def forward_with_bottleneck(
        self, x: torch.Tensor, bottleneck: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # Time first, among the frame tokens only; then spatial attention + MLP per frame,
        # over the frame's tokens and the bottleneck copy.
        return super().forward_with_bottleneck(self.forward_temporal(x), bottleneck)


def build_blocks(
    block_types: list[type[Block]],
    embed_dim: int,
    num_heads: int,
    mlp_ratio: float,
    qkv_bias: bool,
    drop_path_rate: float,
    attn_drop_rate: float,
    proj_drop_rate: float,
) -> nn.ModuleList:
    """One block of each type in ``block_types``, as timm's ViT builds them: stochastic depth
    rising linearly from 0 to ``drop_path_rate`` at the last block (shared by every stream)."""
    depth = len(block_types)
    return nn.ModuleList(
        block_type(
            dim=embed_dim,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            proj_drop=proj_drop_rate,
            attn_drop=attn_drop_rate,
            drop_path=drop_path_rate * index / max(depth - 1, 1),
            norm_layer=_LayerNorm,
        )
        for index, block_type in enumerate(block_types)
    )


class VideoViT(nn.Module):
    """A visual stream: per-frame patch tokens, spatiotemporal position embedding, S/ST blocks.

    Implements Eq. 1 (tokens ``x E + E_pos`` with a learnable classification token), Eq. 2
    (spatial blocks) and Eq. 3 (space-time blocks). Parameter names follow timm's
    ``VisionTransformer`` (``patch_embed``, ``cls_token``, ``pos_embed``, ``blocks``, ``norm``).

    Args:
        in_chans: Input channels C (3 for RGB, 2 for optical flow).
        img_size: Square frame size H = W.
        patch_size: Patch size P.
        num_frames: Frames T the temporal embedding is learned for.
        embed_dim: Token width D.
        depth: Number of blocks L.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width as a multiple of ``embed_dim``.
        qkv_bias: Bias in the query/key/value projections.
        space_time_blocks: How many of the last blocks are `SpaceTimeBlock`.
        drop_path_rate: Stochastic depth of the last block; earlier blocks get linearly less.
        attn_drop_rate: Dropout on attention weights.
        proj_drop_rate: Dropout after projections.
        mask_token: Learn a mask token for masked video modelling (`forward_embed`'s ``tube_mask``).
    """

    @classmethod
    def from_config(cls, config: ModelConfig, modality: str, mask_token: bool = False) -> VideoViT:
        """The ``modality`` stream (``rgb`` or ``flow``) of a model built from ``config``."""
        return cls(
            in_chans=IN_CHANS[modality],
            img_size=config.img_size,
            patch_size=config.patch_size,
            num_frames=config.num_frames,
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            qkv_bias=config.qkv_bias,
            space_time_blocks=config.space_time_blocks,
            drop_path_rate=config.drop_path_rate,
            attn_drop_rate=config.attn_drop_rate,
            proj_drop_rate=config.proj_drop_rate,
            mask_token=mask_token,
        )

    def __init__(
        self,
        in_chans: int,
        img_size: int = 224,
        patch_size: int = 16,
        num_frames: int = 8,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        space_time_blocks: int = 2,
        drop_path_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        mask_token: bool = False,
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.num_frames = num_frames
        self.embed_dim = embed_dim
        self.grad_checkpointing = False
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.empty(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.empty(1, 1 + num_patches, embed_dim))  # spatial, as ViT
        self.time_embed = nn.Parameter(torch.empty(1, num_frames, embed_dim))  # learned temporal
        self.mask_token = nn.Parameter(torch.empty(1, 1, embed_dim)) if mask_token else None
        first_space_time = depth - space_time_blocks
        self.blocks = build_blocks(
            [SpaceTimeBlock if index >= first_space_time else SpaceBlock for index in range(depth)],
            embed_dim,
            num_heads,
            mlp_ratio,
            qkv_bias,
            drop_path_rate,
            attn_drop_rate,
            proj_drop_rate,
        )
        self.norm = _LayerNorm(embed_dim)

    def init_weights(self) -> None:
        """ViT's embedding initialisation; the temporal embedding starts at zero (see module doc)."""
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        nn.init.zeros_(self.time_embed)
        if self.mask_token is not None:
            trunc_normal_(self.mask_token, std=0.02)

    def _time_embed(self, num_frames: int) -> torch.Tensor:
        """The temporal embedding for ``num_frames``, linearly interpolated if T differs from training."""
        if num_frames == self.num_frames:
            return self.time_embed  # (1, T, D)
        resized = F.interpolate(self.time_embed.transpose(1, 2), size=num_frames, mode="linear", align_corners=False)
        return resized.transpose(1, 2)  # (1, T', D)

    def forward_embed(self, video: torch.Tensor, tube_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 1: patch tokens with a class token per frame and the spatial + temporal embeddings.

        Args:
            video: ``(B, C, T, H, W)`` frames.
            tube_mask: ``(B, N)`` bool, True for patch positions whose tube (that position in
                every frame) is replaced by the mask token (masked video modelling); None: none.

        Returns:
            ``(B, T, 1 + N, D)`` tokens before the first block.
        """
        batch, _, num_frames = video.shape[:3]
        frames = rearrange(video, "b c t h w -> (b t) c h w")
        x = rearrange(self.patch_embed(frames), "(b t) n d -> b t n d", b=batch)  # (B, T, N, D)
        if tube_mask is not None:
            x = torch.where(tube_mask[:, None, :, None], self.mask_token.to(x.dtype), x)
        cls = self.cls_token.expand(batch, num_frames, 1, -1)  # (B, T, 1, D)
        x = torch.cat([cls, x], dim=2)  # (B, T, S, D)
        # Eq. 1: spatial embedding (shared by frames) + temporal embedding (shared by positions).
        return x + self.pos_embed.unsqueeze(1) + self._time_embed(num_frames).unsqueeze(2)

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """Tokens after the final LayerNorm.

        Args:
            video: ``(B, C, T, H, W)`` frames.

        Returns:
            ``(B, T, 1 + N, D)``; index 0 of the token axis is each frame's class token.
        """
        x = self.forward_embed(video)
        for block in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.norm(x)

    def forward_head(self, tokens: torch.Tensor) -> torch.Tensor:
        """The stream's classification embedding: the mean of the per-frame class tokens."""
        return tokens[:, :, 0].mean(dim=1)  # (B, D)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` frames -> ``(B, D)`` classification embedding."""
        return self.forward_head(self.forward_features(video))
