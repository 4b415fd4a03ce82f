"""The full multimodal model: visual streams, audio bottleneck, fusion head, classifier.

``model(rgb=, flow=, audio=, audio_present=) -> FusionOutput`` (paper Fig. 2 and Secs. 3.2-3.5):

* each configured visual modality runs its own `VideoViT`
  stream; with RGB and flow, the two classification embeddings are fused by two linear
  layers, each followed by ReLU (Sec. 3.2); with one stream its embedding is used as is;
* the cached AST embedding goes through the audio bottleneck (Sec. 3.3); clips without audio
  (``audio_present`` False) get an all-zero audio embedding, which every fusion head treats as
  absent (IMD drops it exactly like irrelevant audio);
* a fusion head (IMD, Eqs. 4-8, or a Table-5 baseline) combines audio and vision;
* the classifier is MLP(LN(z_av)) (Eq. 9; the softmax lives in the loss).

Unimodal models (one visual stream, or audio only, Table 3) skip the fusion head.
"""

from __future__ import annotations

import torch
from timm.layers import Mlp
from timm.models import named_apply
from timm.models.vision_transformer import init_weights_vit_timm
from torch import nn

from avlabel.errors import AvlabelError
from avlabel.models.audio_bottleneck import AudioBottleneck
from avlabel.models.avt import AudioVideoTransformer
from avlabel.models.config import ModelConfig
from avlabel.models.fusion import FUSION_HEADS
from avlabel.models.outputs import FusedEmbedding, FusionOutput
from avlabel.models.video_vit import VideoViT


class ClassifierHead(nn.Module):
    """Eq. 9 without the softmax: ``logits = MLP(LN(z_av))``.

    Args:
        dim: Width of the fused embedding.
        num_classes: Number of classes C.
        dropout: Dropout inside the MLP.
    """

    def __init__(self, dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=dim, out_features=num_classes, drop=dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm(z))


class MultimodalVideoTransformer(nn.Module):
    """Two-stream video Transformer + audio bottleneck + fusion head (the IMD framework).

    Build it with `build_model`; every size comes from the `ModelConfig`.

    Args:
        config: The architecture. Kept as ``self.config``; store ``config.to_dict()`` in
            checkpoints to rebuild the model.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.streams = nn.ModuleDict(
            {modality: VideoViT.from_config(config, modality) for modality in config.visual_modalities}
        )
        self.visual_fusion = (
            nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())
            if len(self.streams) == 2
            else None
        )
        self.audio_bottleneck = (
            AudioBottleneck(config.audio_dim, config.audio_hidden_dim, dim) if config.has_audio else None
        )
        self.fusion = FUSION_HEADS[config.fusion](config) if config.is_audio_visual else None
        self.head = ClassifierHead(dim, config.num_classes, dropout=config.head_dropout)
        self.init_weights()
        self.set_grad_checkpointing(config.grad_checkpointing)

    def init_weights(self) -> None:
        """The one place weights are initialised: ViT's scheme over every submodule.

        Linear layers get a truncated normal (std 0.02) and zero bias; modules with their own
        ``init_weights`` (streams: position/class/temporal embeddings; space-time blocks: LR
        at zero; the NL gate: its residual projection at zero) run it after their children.
        Parameters on the meta device (built to count parameters or FLOPs) hold no values and
        are left alone.
        """
        if any(parameter.is_meta for parameter in self.parameters()):
            return
        named_apply(init_weights_vit_timm, self)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each Transformer block's activations in backward instead of storing them."""
        for stream in self.streams.values():
            stream.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """Parameter names that optimisers conventionally exclude from weight decay (timm's hook)."""
        return {
            f"streams.{modality}.{name}"
            for modality in self.streams
            for name in ("cls_token", "pos_embed", "time_embed")
        }

    def forward_visual(self, rgb: torch.Tensor | None, flow: torch.Tensor | None) -> torch.Tensor | None:
        """``(B, 3, T, H, W)`` RGB and/or ``(B, 2, T, H, W)`` flow -> ``(B, D)`` visual embedding."""
        inputs = {"rgb": rgb, "flow": flow}
        embeddings = [stream(inputs[modality]) for modality, stream in self.streams.items()]
        if not embeddings:
            return None
        if self.visual_fusion is None:
            return embeddings[0]
        return self.visual_fusion(torch.cat(embeddings, dim=-1))  # (B, 2D) -> (B, D)

    def forward_audio(
        self, audio: torch.Tensor | None, audio_present: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(B, D_audio)`` AST embedding -> ``(B, D)`` bottleneck output, zero where absent, and the mask."""
        if self.audio_bottleneck is None:
            return None, None
        if audio_present is None:
            audio_present = torch.ones(audio.shape[0], dtype=torch.bool, device=audio.device)
        embedding = self.audio_bottleneck(audio)
        # where, not multiply: absent clips may carry NaN placeholders, and get no gradient.
        embedding = torch.where(audio_present.unsqueeze(-1), embedding, torch.zeros_like(embedding))
        return embedding, audio_present

    def forward_fusion(
        self, visual: torch.Tensor | None, audio: torch.Tensor | None, present: torch.Tensor | None
    ) -> FusedEmbedding:
        """Combine the modality embeddings into the classifier input ``z`` (B, D)."""
        if self.fusion is not None:
            return self.fusion(visual, audio, present)
        if visual is not None:
            return FusedEmbedding(z=visual)
        return FusedEmbedding(z=audio, keep=present)

    def forward(
        self,
        rgb: torch.Tensor | None = None,
        flow: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        audio_present: torch.Tensor | None = None,
    ) -> FusionOutput:
        """Classify a batch of clips.

        Args:
            rgb: ``(B, 3, T, H, W)`` normalised frames, if the model has an RGB stream.
            flow: ``(B, 2, T, H, W)`` optical flow, if the model has a flow stream.
            audio: ``(B, D_audio)`` AST embeddings, if the model has audio.
            audio_present: ``(B,)`` bool, False for clips without an audio track (their audio is
                dropped like irrelevant audio); None means every clip has audio.

        Returns:
            `FusionOutput` with ``(B, C)`` logits and the IMD/auxiliary outputs.
        """
        self._check_inputs(rgb=rgb, flow=flow, audio=audio, audio_present=audio_present)
        visual = self.forward_visual(rgb, flow)
        audio_embedding, present = self.forward_audio(audio, audio_present)
        fused = self.forward_fusion(visual, audio_embedding, present)
        return FusionOutput(
            logits=self.head(fused.z),
            rev=fused.rev,
            rev_logit=fused.rev_logit,
            delta=fused.delta,
            keep=fused.keep,
            aux_loss=fused.aux_loss,
        )

    def _check_inputs(self, **inputs: torch.Tensor | None) -> None:
        """Each configured modality must be given and no other (a silent ignore hides bugs)."""
        for modality in ("rgb", "flow", "audio"):
            expected = modality in self.config.modalities
            if expected and inputs[modality] is None:
                raise AvlabelError(
                    f"model {self.config.name!r} uses {modality} but no {modality} input was passed; "
                    f"pass {modality}= or build a config without it"
                )
            if not expected and inputs[modality] is not None:
                raise AvlabelError(
                    f"model {self.config.name!r} has no {modality} input (modalities: "
                    f"{', '.join(self.config.modalities)}); drop {modality}= or add it to modalities"
                )
        if inputs["audio_present"] is not None and inputs["audio"] is None:
            raise AvlabelError("audio_present was passed without audio; pass audio= as well")


def build_model(config: ModelConfig) -> MultimodalVideoTransformer | AudioVideoTransformer:
    """Build a randomly initialised model for ``config`` (no download; see ``load_pretrained``).

    A token fusion (``bottleneck``, ``full_attention``) builds the AVT family
    (`AudioVideoTransformer`), any other fusion the IMD family. Build under
    ``with torch.device("meta"):`` to count parameters or FLOPs without memory.
    """
    if config.is_token_fusion:
        return AudioVideoTransformer(config)
    return MultimodalVideoTransformer(config)
