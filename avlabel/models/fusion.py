"""Audio-visual fusion heads: IMD and the baselines of the paper's Table 5.

Every head maps ``(visual (B, D), audio (B, D), present (B,) bool)`` to a
`FusedEmbedding` whose ``z`` (B, D) feeds the shared classifier.
The audio embedding a head receives is already zero where ``present`` is False.

The baselines were defined on feature maps; here each encoder yields one embedding per
modality, so each head is its source's operation applied to those embeddings (the docstrings
say how). Heads are chosen by name from `FUSION_HEADS`, a plain name -> factory table.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from avlabel.models.config import ModelConfig
from avlabel.models.imd import GatedAudioFusion, IMDFusion
from avlabel.models.outputs import FusedEmbedding

SE_MIN_WIDTH = 8  # narrowest SE-gate bottleneck, whatever the reduction


class LateConcatFusion(nn.Module):
    """Late concatenation (Wang, Tran & Feiszli, "What makes training multi-modal
    classification networks hard?", CVPR 2020): ``z = W [visual; audio] + b``.

    Args:
        dim: Embedding width D.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(2 * dim, dim)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor, present: torch.Tensor) -> FusedEmbedding:
        return FusedEmbedding(z=self.proj(torch.cat([visual, audio], dim=-1)), keep=present)


class SEGateFusion(nn.Module):
    """Squeeze-and-excitation gate (Wang et al., CVPR 2020, after Hu et al.'s SE blocks):
    the audio embedding is squeezed through a bottleneck into per-channel sigmoid gates that
    rescale the visual embedding, and the gated visual embedding is concatenated with the
    audio one: ``z = W [visual * sigmoid(W2 relu(W1 audio)); audio]``.

    The bottleneck is ``max(D // reduction, SE_MIN_WIDTH)`` wide: SENet's reduction 16 gives 48
    units at D = 768 (imd_b) and 64 at D = 1024 (imd_l), as SE blocks have on ResNet stages of
    that width, while the floor keeps tiny models (D = 32: 2 units) from a gate that can
    express almost nothing; timm's SE layers never go below 8 channels either.

    Args:
        dim: Embedding width D.
        reduction: Bottleneck reduction r of the gate MLP (SENet's 16 by default).
    """

    def __init__(self, dim: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(dim // reduction, SE_MIN_WIDTH)
        self.gate = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, dim),
            nn.Sigmoid(),
        )
        self.proj = nn.Linear(2 * dim, dim)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor, present: torch.Tensor) -> FusedEmbedding:
        gated = visual * self.gate(audio)
        return FusedEmbedding(z=self.proj(torch.cat([gated, audio], dim=-1)), keep=present)


class NLGateFusion(nn.Module):
    """Non-local gate (Wang et al., CVPR 2020, after Wang et al.'s non-local blocks): the visual
    embedding queries the modality embeddings and adds what it reads through a residual
    projection that starts at zero; the result is concatenated with the audio embedding.

    With one embedding per modality a visual query over audio alone would always put weight
    1 on it, so the keys are both embeddings: the softmax decides, per clip, how much the
    visual representation takes from the audio. Absent audio is masked out of the keys.

    Args:
        dim: Embedding width D.
        inner_dim: Width of the query/key/value projections (D/2 as in non-local blocks).
    """

    def __init__(self, dim: int, inner_dim: int | None = None) -> None:
        super().__init__()
        inner_dim = inner_dim or dim // 2
        self.query = nn.Linear(dim, inner_dim)
        self.key = nn.Linear(dim, inner_dim)
        self.value = nn.Linear(dim, inner_dim)
        self.out = nn.Linear(inner_dim, dim)
        self.proj = nn.Linear(2 * dim, dim)

    def init_weights(self) -> None:
        # The non-local block starts as the identity (its output BN/projection at zero).
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor, present: torch.Tensor) -> FusedEmbedding:
        tokens = torch.stack([visual, audio], dim=1)  # (B, 2, D): the two modality embeddings
        q = self.query(visual)[:, None, None]  # (B, heads=1, 1, d)
        k = self.key(tokens)[:, None]  # (B, 1, 2, d)
        v = self.value(tokens)[:, None]  # (B, 1, 2, d)
        # The visual key is always visible; the audio key only when the clip has audio.
        visible = torch.stack([torch.ones_like(present), present], dim=-1)[:, None, None]  # (B, 1, 1, 2)
        read = F.scaled_dot_product_attention(q, k, v, attn_mask=visible)[:, 0, 0]  # (B, d)
        gated = visual + self.out(read)
        return FusedEmbedding(z=self.proj(torch.cat([gated, audio], dim=-1)), keep=present)


class GMUFusion(nn.Module):
    """Gated multimodal unit (Arevalo et al., "Gated multimodal units for information
    fusion", ICLR workshop 2017): ``h_v = tanh(W_v v)``, ``h_a = tanh(W_a a)``,
    ``g = sigmoid(W_g [v; a])``, ``z = g * h_v + (1 - g) * h_a``.

    Args:
        dim: Embedding width D.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        # No biases, as in the GMU equations; absent (zero) audio then gives h_a = 0 exactly.
        self.visual_proj = nn.Linear(dim, dim, bias=False)
        self.audio_proj = nn.Linear(dim, dim, bias=False)
        self.gate = nn.Linear(2 * dim, dim, bias=False)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor, present: torch.Tensor) -> FusedEmbedding:
        h_visual = torch.tanh(self.visual_proj(visual))
        h_audio = torch.tanh(self.audio_proj(audio))
        gate = torch.sigmoid(self.gate(torch.cat([visual, audio], dim=-1)))
        return FusedEmbedding(z=gate * h_visual + (1 - gate) * h_audio, keep=present)


class AVCFusion(nn.Module):
    """Late concatenation plus an audio-visual correspondence (AVC) auxiliary task
    (Arandjelovic & Zisserman, "Look, Listen and Learn", ICCV 2017).

    A small MLP on ``[visual; audio]`` predicts whether the two come from the same clip. In
    training mode the head builds negatives by pairing each clip's visual embedding with the
    audio of another clip in the batch (a random cyclic shift, so no clip is paired with
    itself) and returns the binary cross-entropy over positives and negatives, times
    ``loss_weight``, as ``aux_loss``. Pairs involving a clip without audio are left out.

    Args:
        dim: Embedding width D.
        loss_weight: Factor on the correspondence loss.
    """

    def __init__(self, dim: int, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.proj = nn.Linear(2 * dim, dim)
        self.correspondence = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, 1))

    def forward(self, visual: torch.Tensor, audio: torch.Tensor, present: torch.Tensor) -> FusedEmbedding:
        z = self.proj(torch.cat([visual, audio], dim=-1))
        aux_loss = self._correspondence_loss(visual, audio, present) if self.training else None
        return FusedEmbedding(z=z, keep=present, aux_loss=aux_loss)

    def _correspondence_loss(self, visual: torch.Tensor, audio: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        batch = visual.shape[0]
        # A shift in [1, B-1] pairs every clip with a different clip's audio; with B = 1 there
        # are no negatives and the shift 0 pairs are given zero weight below.
        shift = torch.randint(1, max(batch, 2), (), device=visual.device) % batch
        partner = (torch.arange(batch, device=visual.device) + shift) % batch  # (B,)
        pairs = torch.cat(
            [
                torch.cat([visual, audio], dim=-1),  # positives: (v_i, a_i)
                torch.cat([visual, audio[partner]], dim=-1),  # negatives: (v_i, a_partner(i))
            ]
        )  # (2B, 2D)
        targets = torch.cat([torch.ones(batch), torch.zeros(batch)]).to(visual)
        weights = torch.cat([present, present[partner] & (partner != torch.arange(batch, device=visual.device))])
        logits = self.correspondence(pairs).squeeze(-1)  # (2B,)
        loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        weights = weights.to(loss.dtype)
        return self.loss_weight * (loss * weights).sum() / weights.sum().clamp(min=1.0)


class DropPathwayFusion(GatedAudioFusion):
    """Random audio dropout: AVSlowFast's DropPathway (Xiao et al., "Audiovisual SlowFast
    networks for video recognition", 2020) on IMD's own fusion layers.

    In training each clip's audio is dropped with probability ``p`` (``delta`` = 0) and
    otherwise kept whole (``delta`` = 1); in evaluation every clip keeps its audio. The fused
    embedding is ``MLP(LN([delta * audio; visual]))``, IMD's Eqs. 6-8 with the same layers, so
    the comparison with IMD isolates one question: is *learned* dropout (a relevance network
    choosing which audio to drop, Eqs. 4-5) better than *random* dropout at a similar rate?
    IMD in mode M also scales the audio it keeps by its score; here kept audio is unscaled, as
    a coin carries no score. Like the Table-5 baselines it trains without the relevance loss.
    DropPathway drops the audio pathway of the whole network; here the audio embedding is the
    whole audio pathway, so dropping it per clip is the same operation. The draw uses torch's
    generator, which training seeds per rank and saves in checkpoints, so runs resume exactly.

    Args:
        dim: Embedding width D.
        p: Probability of dropping a training clip's audio.
    """

    def __init__(self, dim: int, p: float = 0.5) -> None:
        super().__init__()
        self.p = p
        self.build_fusion(dim)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor, present: torch.Tensor) -> FusedEmbedding:
        keep = present
        if self.training:
            keep = present & (torch.rand(present.shape, device=present.device) >= self.p)
        delta = keep.to(audio.dtype)
        return FusedEmbedding(z=self.fuse_gated(visual, audio, delta, keep), delta=delta, keep=keep)


# name -> factory(config) -> head; the names are ModelConfig's FUSION_NAMES.
FUSION_HEADS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    "imd": lambda config: IMDFusion(config.embed_dim, alpha=config.imd_alpha, mode=config.imd_mode),
    "late_concat": lambda config: LateConcatFusion(config.embed_dim),
    "se_gate": lambda config: SEGateFusion(config.embed_dim, reduction=config.se_reduction),
    "nl_gate": lambda config: NLGateFusion(config.embed_dim),
    "gmu": lambda config: GMUFusion(config.embed_dim),
    "avc": lambda config: AVCFusion(config.embed_dim, loss_weight=config.avc_loss_weight),
    "drop_pathway": lambda config: DropPathwayFusion(config.embed_dim, p=config.drop_pathway_p),
}
