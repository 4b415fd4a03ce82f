"""AVT: the audio-video bottleneck Transformer and the heads of its self-supervised objectives.

``model(rgb=, flow=, audio_tokens=, audio_token_valid=) -> FusionOutput``. AVT's abstract fixes
bottleneck fusion between an audio and a video Transformer, and four self-supervised objectives;
the rest follows the nearest published design, named where it is used (docs/models.md lists
which choice comes from where).

Streams. Each visual modality keeps IMD's factorised `VideoViT` stream (spatial blocks, then
divided space-time blocks); the audio tokens of the cache go through an `AudioTokenStream` of
the same depth and width. Layer ``l`` of every stream forms layer ``l`` of the model.

Fusion (MBT, Nagrani et al. 2021, scenic ``projects/mbt``). Layers before ``fusion_layer``
run each stream alone. From ``fusion_layer`` on:

* ``fusion="bottleneck"``: ``n_bottleneck`` learned tokens ``z`` (init N(0, 0.02)) join every
  stream's layer: each stream attends over its own tokens plus ``z``, and ``z`` becomes the
  mean of the streams' updated copies -- the only path between modalities. A video stream meets
  ``z`` in its per-frame spatial attention: every frame attends over its ``S`` tokens plus a copy
  of ``z``, and the stream's update is the mean of the ``T`` frame copies
  (`SpaceBlock.forward_with_bottleneck`); the temporal attention of a space-time block stays
  among the frame tokens. A clip without audio leaves the audio stream's copy out of the mean.
* ``fusion="full_attention"`` (MBT's vanilla cross-attention; "concatenating multimodal tokens"
  in AVT's abstract): each stream's layer reads every token of every stream -- a video stream
  all ``T x S`` tokens of the clip at once -- with its own weights; queries are the stream's own
  tokens (the exact result of running its block on the concatenation and keeping its slice, at
  the cost of one joint layer rather than one per stream).
* ``fusion_layer = depth``: late fusion, no exchange (MBT's baseline).

Classification (MBT's "token" classifier): one linear head shared by the streams reads each
stream's class embedding (a video stream's: the mean of its per-frame class tokens, after the
final LayerNorm); ``logits`` is the mean of the streams' logits (the audio stream's left out
for clips without audio), ``modality_logits`` holds each, for the training loss (the mean of
the per-stream cross-entropies). With ``linear_probe=True`` the head reads detached class
embeddings: the self-supervised stage trains it as an online linear probe while no label
reaches the encoder.

Self-supervised heads (``config.pretext_heads``; built only for the losses training runs):

* ``contrastive`` (CAV-MAE / ALBEF): each stream's class embedding *at the fusion boundary*
  (before any exchange, so a clip's video and audio embeddings cannot share information through
  the bottleneck) goes through LayerNorm + Linear to ``contrastive_dim``; the video embedding is
  the mean over visual streams; both are L2-normalised. The temperature is learnable (init
  0.07, clamped to [0.001, 0.5] in place before each training forward, as ALBEF does).
* ``matching`` (ALBEF's ITM): LayerNorm + Linear(D, 2) on the fused representation: the mean of
  the final bottleneck tokens (full attention: of the streams' class embeddings). In training
  the layers from ``fusion_layer`` on run on 3B pairs: every clip's own pair, each video with
  one hard-negative audio and each audio with one hard-negative video, drawn from
  softmax(similarity / temperature) over the other clips of the batch (never the clip itself,
  never a clip without audio as the audio side); uniform over them without a contrastive head.
  The layers before ``fusion_layer`` run once: the pairs reuse their tokens.
* ``masked_video`` / ``masked_audio`` (VideoMAE tubes / CAV-MAE; BEiT/SimMIM-style encoding):
  given masks, a second forward pass replaces the masked patch tubes / audio tokens by learned
  mask tokens and a linear decoder per stream predicts every token's target: per-patch
  normalised pixels (RGB, MAE's norm_pix), the patch's flow values (flow: their magnitude is
  the motion, so they are not normalised away), the per-token standardised cached audio token.
  The masked pass costs one more forward and backward of the whole model.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.models import named_apply
from timm.models.vision_transformer import Block, init_weights_vit_timm
from torch import nn
from torch.utils.checkpoint import checkpoint

from avlabel.errors import AvlabelError
from avlabel.models.audio_stream import AudioTokenStream
from avlabel.models.config import ModelConfig
from avlabel.models.outputs import ContrastiveEmbeddings, FusionOutput, MatchingOutput, Reconstruction
from avlabel.models.video_vit import IN_CHANS, SpaceTimeBlock, VideoViT


class _Features(NamedTuple):
    """What the layers produce for the heads (P = B clips, or 3B pairs with matching in training)."""

    class_embeddings: dict[str, torch.Tensor]  # stream -> (P, D), after the final LayerNorm
    bottleneck: torch.Tensor | None  # (P, K, D) final bottleneck tokens (fusion="bottleneck")
    embeddings: ContrastiveEmbeddings | None  # of the B clips, from the fusion boundary
    pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None  # video_index, audio_index, sampled
    present: torch.Tensor | None  # (P,) bool, the pair's audio is present
    batch: int  # B


TEMPERATURE_INIT = 0.07  # ALBEF
TEMPERATURE_RANGE = (0.001, 0.5)  # ALBEF's clamp


class AudioVideoTransformer(nn.Module):
    """AVT: factorised video streams and an audio token stream fused by bottleneck tokens.

    Build it with `avlabel.models.build_model` from a config whose ``fusion`` is
    ``bottleneck`` or ``full_attention``; every size comes from the `ModelConfig`.

    Args:
        config: The architecture, kept as ``self.config``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        dim, heads = config.embed_dim, set(config.pretext_heads)
        streams: dict[str, nn.Module] = {
            modality: VideoViT.from_config(config, modality, mask_token="masked_video" in heads)
            for modality in config.visual_modalities
        }
        if config.has_audio:
            streams["audio"] = AudioTokenStream(
                token_dim=config.audio_dim,
                num_tokens=config.audio_tokens,
                embed_dim=dim,
                depth=config.depth,  # the video streams' depth: layer l of each stream forms layer l
                num_heads=config.num_heads,
                mlp_ratio=config.mlp_ratio,
                qkv_bias=config.qkv_bias,
                drop_path_rate=config.drop_path_rate,
                attn_drop_rate=config.attn_drop_rate,
                proj_drop_rate=config.proj_drop_rate,
                mask_token="masked_audio" in heads,
            )
        self.streams = nn.ModuleDict(streams)
        self.fuses = len(self.streams) > 1 and config.fusion_layer < config.depth
        self.bottleneck = (
            nn.Parameter(torch.empty(1, config.n_bottleneck, dim))
            if self.fuses and config.fusion == "bottleneck"
            else None
        )
        self.head = nn.Linear(dim, config.num_classes)  # shared by the streams (MBT)
        self.contrastive = (
            nn.ModuleDict(
                {m: nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, config.contrastive_dim)) for m in self.streams}
            )
            if "contrastive" in heads
            else None
        )
        self.temperature = nn.Parameter(torch.empty(())) if "contrastive" in heads else None
        self.matching_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2)) if "matching" in heads else None
        masked = [m for m in config.visual_modalities if "masked_video" in heads]
        masked += ["audio"] if "masked_audio" in heads else []
        self.decoders = nn.ModuleDict({m: nn.Linear(dim, self._target_dim(m)) for m in masked})
        self.grad_checkpointing = False
        self.init_weights()
        self.set_grad_checkpointing(config.grad_checkpointing)

    def _target_dim(self, modality: str) -> int:
        if modality == "audio":
            return self.config.audio_dim
        return IN_CHANS[modality] * self.config.patch_size**2

    def init_weights(self) -> None:
        """ViT's scheme over every submodule, then the bottleneck (MBT: N(0, 0.02)) and temperature."""
        if any(parameter.is_meta for parameter in self.parameters()):
            return
        named_apply(init_weights_vit_timm, self)
        if self.bottleneck is not None:
            nn.init.normal_(self.bottleneck, std=0.02)
        if self.temperature is not None:
            nn.init.constant_(self.temperature, TEMPERATURE_INIT)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each layer's activations in backward instead of storing them."""
        self.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """Embeddings and learned tokens, which optimisers conventionally exclude from weight decay."""
        names = {"bottleneck", "temperature"}
        for modality, stream in self.streams.items():
            for name in ("cls_token", "pos_embed", "time_embed", "mask_token"):
                if getattr(stream, name, None) is not None:
                    names.add(f"streams.{modality}.{name}")
        return names

    # ---- forward ---------------------------------------------------------------------------------
    def forward(
        self,
        rgb: torch.Tensor | None = None,
        flow: torch.Tensor | None = None,
        audio_tokens: torch.Tensor | None = None,
        audio_token_valid: torch.Tensor | None = None,
        *,
        rgb_mask: torch.Tensor | None = None,
        flow_mask: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        linear_probe: bool = False,
    ) -> FusionOutput:
        """Classify a batch of clips (and, in training, compute what the self-supervised losses need).

        Args:
            rgb: ``(B, 3, T, H, W)`` normalised frames, if the model has an RGB stream.
            flow: ``(B, 2, T, H, W)`` optical flow, if the model has a flow stream.
            audio_tokens: ``(B, N_a, D_a)`` cached audio tokens, if the model has audio.
            audio_token_valid: ``(B, N_a)`` bool, False for padding tokens (all False for a clip
                without audio); required with ``audio_tokens``.
            rgb_mask, flow_mask: ``(B, N)`` bool tube masks over the patch positions (masked video
                modelling); audio_mask: ``(B, N_a)`` bool (masked audio modelling). Any of them
                runs the masked pass and fills ``reconstructions``.
            linear_probe: classify from detached class embeddings (the self-supervised stage).

        Returns:
            `FusionOutput`: ``logits`` (B, C) (the mean of the present streams' logits),
            ``modality_logits``/``modality_mask``, ``keep`` (audio present), and ``embeddings``,
            ``matching``, ``reconstructions`` as the heads and masks provide.
        """
        inputs = {"rgb": rgb, "flow": flow, "audio": audio_tokens}
        self._check_inputs(inputs, audio_token_valid)
        valid = audio_token_valid.to(torch.bool) if audio_tokens is not None else None
        if self.training and self.temperature is not None:
            with torch.no_grad():
                self.temperature.clamp_(*TEMPERATURE_RANGE)
        features = self.forward_features(inputs, valid)
        modality_logits, modality_mask, logits = self.forward_head(features, linear_probe)
        matching = None
        if self.matching_head is not None:
            matching = MatchingOutput(self.matching_head(self._fused_representation(features)), *features.pairs)
        masks = {"rgb": rgb_mask, "flow": flow_mask, "audio": audio_mask}
        masks = {modality: mask for modality, mask in masks.items() if mask is not None}
        return FusionOutput(
            logits=logits,
            keep=features.present[: features.batch] if features.present is not None else None,
            modality_logits=modality_logits,
            modality_mask=modality_mask,
            embeddings=features.embeddings,
            matching=matching,
            reconstructions=self.forward_masked(inputs, valid, masks) if masks else None,
        )

    def forward_features(self, inputs: dict[str, torch.Tensor | None], valid: torch.Tensor | None) -> _Features:
        """Every layer of every stream: class embeddings, final bottleneck, contrastive embeddings.

        The layers before ``fusion_layer`` run on the batch; with a matching head in training,
        the later layers run on the 3B pairs of `matching_pairs`.
        """
        present = valid.any(dim=1) if valid is not None else None
        x = self.forward_embed(inputs, valid, {})
        x, _ = self.forward_layers(x, valid, present, range(self.config.fusion_layer))
        embeddings = self.forward_contrastive(x) if self.contrastive is not None else None
        batch = next(iter(x.values())).shape[0]
        pairs = None
        if self.matching_head is not None:
            pairs = self.matching_pairs(embeddings, present, batch)
            video_index, audio_index, _ = pairs
            x = {m: tokens[audio_index if m == "audio" else video_index] for m, tokens in x.items()}
            valid, present = valid[audio_index], present[audio_index]
        x, bottleneck = self.forward_layers(x, valid, present, range(self.config.fusion_layer, self.config.depth))
        # The final LayerNorm of the class tokens only: the other tokens are not read.
        class_embeddings = {m: self.streams[m].forward_head(self.streams[m].norm(t[..., :1, :])) for m, t in x.items()}
        return _Features(class_embeddings, bottleneck, embeddings, pairs, present, batch)

    def forward_head(
        self, features: _Features, linear_probe: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """MBT's classifier: ``(modality_logits (B, M, C), modality_mask (B, M), logits (B, C))``.

        The shared head reads each stream's class embedding; ``logits`` is the mean over the
        streams present (the audio stream's only where the clip has audio).
        """
        batch = features.batch
        stacked = torch.stack([e[:batch] for e in features.class_embeddings.values()], dim=1)  # (B, M, D)
        modality_logits = self.head(stacked.detach() if linear_probe else stacked)  # (B, M, C)
        present = features.present
        modality_mask = torch.stack(
            [
                present[:batch] if modality == "audio" else torch.ones(batch, dtype=torch.bool, device=stacked.device)
                for modality in features.class_embeddings
            ],
            dim=1,
        )
        # A clip none of whose streams is present (audio-only model, clip without audio) is
        # predicted from them all: the audio class token that saw no audio gives a constant guess.
        counted = torch.where(modality_mask.any(dim=1, keepdim=True), modality_mask, True)
        weight = counted.unsqueeze(-1).to(modality_logits.dtype)
        logits = (modality_logits * weight).sum(dim=1) / weight.sum(dim=1)
        return modality_logits, modality_mask, logits

    def forward_embed(
        self, inputs: dict[str, torch.Tensor | None], valid: torch.Tensor | None, masks: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Every stream's tokens before its first block (masked tubes / tokens replaced by mask tokens)."""
        x = {}
        for modality, stream in self.streams.items():
            if modality == "audio":
                x[modality] = stream.forward_embed(inputs[modality], valid, masks.get(modality))
            else:
                x[modality] = stream.forward_embed(inputs[modality], masks.get(modality))
        return x

    def forward_layers(
        self,
        x: dict[str, torch.Tensor],
        valid: torch.Tensor | None,
        present: torch.Tensor | None,
        layers: range,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Run ``layers`` of every stream; returns the tokens and the final bottleneck (or None)."""
        bottleneck = None
        for index in layers:
            fused = self.fuses and index >= self.config.fusion_layer
            if fused and self.bottleneck is not None and bottleneck is None:
                bottleneck = self.bottleneck.expand(next(iter(x.values())).shape[0], -1, -1)
            if self.grad_checkpointing and torch.is_grad_enabled():
                x, bottleneck = checkpoint(self._layer, index, x, valid, present, bottleneck, use_reentrant=False)
            else:
                x, bottleneck = self._layer(index, x, valid, present, bottleneck)
        return x, bottleneck

    def _layer(
        self,
        index: int,
        x: dict[str, torch.Tensor],
        valid: torch.Tensor | None,
        present: torch.Tensor | None,
        bottleneck: torch.Tensor | None,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Layer ``index`` of every stream: alone, with the bottleneck, or over all tokens."""
        blocks = {modality: stream.blocks[index] for modality, stream in self.streams.items()}
        if not self.fuses or index < self.config.fusion_layer:
            out = {}
            for modality, tokens in x.items():
                if modality == "audio":
                    out[modality] = blocks[modality](tokens, attn_mask=AudioTokenStream.key_mask(valid))
                else:
                    out[modality] = blocks[modality](tokens)
            return out, None
        if bottleneck is not None:
            return self._bottleneck_layer(blocks, x, valid, present, bottleneck)
        return self._full_attention_layer(blocks, x, valid, present), None

    def _bottleneck_layer(
        self,
        blocks: dict[str, nn.Module],
        x: dict[str, torch.Tensor],
        valid: torch.Tensor | None,
        present: torch.Tensor | None,
        bottleneck: torch.Tensor,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """MBT's bottleneck layer: each stream over its tokens + z; z <- mean of the present streams' copies."""
        out, updates, weights = {}, [], []
        for modality, tokens in x.items():
            if modality == "audio":
                keys = AudioTokenStream.key_mask(valid, extra=bottleneck.shape[1])
                joint = blocks[modality](torch.cat([tokens, bottleneck], dim=1), attn_mask=keys)  # (B, 1+N_a+K, D)
                out[modality], update = joint[:, : tokens.shape[1]], joint[:, tokens.shape[1] :]
                weights.append(present.to(update.dtype))
            else:
                out[modality], update = blocks[modality].forward_with_bottleneck(tokens, bottleneck)
                weights.append(update.new_ones(update.shape[0]))
            updates.append(update)
        weight = torch.stack(weights, dim=1)[:, :, None, None]  # (B, M, 1, 1)
        bottleneck = (torch.stack(updates, dim=1) * weight).sum(dim=1) / weight.sum(dim=1)  # (B, K, D)
        return out, bottleneck

    def _full_attention_layer(
        self,
        blocks: dict[str, nn.Module],
        x: dict[str, torch.Tensor],
        valid: torch.Tensor | None,
        present: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        """MBT's vanilla cross-attention: each stream's block reads the tokens of every stream."""
        own, keys = {}, {}
        for modality, tokens in x.items():
            if modality == "audio":
                own[modality] = tokens  # (B, 1+N_a, D)
                # An absent clip's audio (its class token included) is no key for the other streams.
                keys[modality] = torch.cat([present[:, None], valid & present[:, None]], dim=1)
            else:
                block = blocks[modality]
                frames = block.forward_temporal(tokens) if isinstance(block, SpaceTimeBlock) else tokens
                own[modality] = rearrange(frames, "b t s d -> b (t s) d")  # every frame's tokens at once
                keys[modality] = torch.ones(own[modality].shape[:2], dtype=torch.bool, device=tokens.device)
        context = torch.cat(list(own.values()), dim=1)  # (B, sum of the streams' token counts, D)
        out = {}
        for modality, tokens in x.items():
            readable = dict(keys)
            if modality == "audio":
                # The audio queries keep their own class token, so no attention row is empty.
                readable[modality] = torch.cat([torch.ones_like(present[:, None]), keys[modality][:, 1:]], dim=1)
            mask = torch.cat(list(readable.values()), dim=1)[:, None, None, :]  # (B, 1, 1, L_all)
            updated = block_with_context(blocks[modality], own[modality], context, mask)
            out[modality] = (
                updated if modality == "audio" else rearrange(updated, "b (t s) d -> b t s d", t=tokens.shape[1])
            )
        return out

    # ---- heads -----------------------------------------------------------------------------------
    def forward_contrastive(self, x: dict[str, torch.Tensor]) -> ContrastiveEmbeddings:
        """Projected, L2-normalised class embeddings at the fusion boundary (video: mean over visual streams)."""
        projected = {}
        for modality, tokens in x.items():
            cls = tokens[:, 0] if modality == "audio" else tokens[:, :, 0].mean(dim=1)  # (B, D)
            projected[modality] = self.contrastive[modality](cls)
        video = torch.stack([value for m, value in projected.items() if m != "audio"]).mean(dim=0)
        return ContrastiveEmbeddings(
            video=F.normalize(video, dim=-1),
            audio=F.normalize(projected["audio"], dim=-1),
            temperature=self.temperature,
        )

    def matching_pairs(
        self, embeddings: ContrastiveEmbeddings | None, present: torch.Tensor, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(video_index, audio_index, sampled)`` of the pairs the matching head scores.

        Evaluation: the B positive pairs. Training: positives, then each video with a hard
        negative audio, then each audio with a hard negative video (`sample_negatives`).
        """
        rows = torch.arange(batch, device=present.device)
        if not self.training:
            return rows, rows, torch.ones_like(rows, dtype=torch.bool)
        if embeddings is not None:
            similarity = (embeddings.video @ embeddings.audio.T).detach().float() / embeddings.temperature.detach()
        else:
            similarity = torch.zeros(batch, batch, device=present.device)  # uniform over the candidates
        others = ~torch.eye(batch, dtype=torch.bool, device=present.device)
        # video i with another clip's audio j (j must have audio); audio i with another clip's video j.
        negative_audio, found_audio = sample_negatives(similarity, others & present[None, :])
        negative_video, found_video = sample_negatives(similarity.T, others & present[:, None])
        video_index = torch.cat([rows, rows, negative_video])
        audio_index = torch.cat([rows, negative_audio, rows])
        sampled = torch.cat([torch.ones_like(found_audio), found_audio, found_video])
        return video_index, audio_index, sampled

    def _fused_representation(self, features: _Features) -> torch.Tensor:
        """``(P, D)``: the mean final bottleneck token, or (full attention) the mean present class embedding."""
        if features.bottleneck is not None:
            return features.bottleneck.mean(dim=1)
        embeddings = torch.stack(list(features.class_embeddings.values()), dim=1)  # (P, M, D)
        present = features.present
        weights = torch.stack(
            [present if m == "audio" else torch.ones_like(present) for m in features.class_embeddings], dim=1
        )
        weights = weights.unsqueeze(-1).to(embeddings.dtype)  # (P, M, 1)
        return (embeddings * weights).sum(dim=1) / weights.sum(dim=1)

    def forward_masked(
        self, inputs: dict[str, torch.Tensor | None], valid: torch.Tensor | None, masks: dict[str, torch.Tensor]
    ) -> dict[str, Reconstruction]:
        """The masked pass: masked tubes / tokens replaced by mask tokens, every token's target predicted.

        Args:
            inputs: stream name -> input (frames or audio tokens).
            valid: ``(B, N_a)`` bool audio token validity, or None without audio.
            masks: stream name -> ``(B, N)`` tube mask or ``(B, N_a)`` token mask.
        """
        missing = sorted(set(masks) - set(self.decoders))
        if missing:
            raise AvlabelError(
                f"model {self.config.name!r} has no masked-modelling head for {', '.join(missing)}; "
                "build it with masked_video / masked_audio in pretext_heads"
            )
        present = valid.any(dim=1) if valid is not None else None
        x = self.forward_embed(inputs, valid, masks)
        x, _ = self.forward_layers(x, valid, present, range(self.config.depth))
        reconstructions = {}
        for modality in masks:
            tokens = self.streams[modality].norm(x[modality])
            if modality == "audio":
                prediction = self.decoders[modality](tokens[:, 1:])  # (B, N_a, D_a)
                source = inputs[modality].float()
                target = F.layer_norm(source, source.shape[-1:])  # each token standardised
            else:
                prediction = self.decoders[modality](tokens[:, :, 1:])  # (B, T, N, P·P·C)
                target = video_patch_targets(inputs[modality], self.config.patch_size, normalise=modality == "rgb")
            reconstructions[modality] = Reconstruction(prediction, target)
        return reconstructions

    def _check_inputs(self, inputs: dict[str, torch.Tensor | None], valid: torch.Tensor | None) -> None:
        """Each configured stream must be given and no other (a silent ignore hides a miswired pipeline)."""
        names = {"rgb": "rgb", "flow": "flow", "audio": "audio_tokens"}
        for modality, value in inputs.items():
            expected = modality in self.streams
            if expected and value is None:
                raise AvlabelError(
                    f"model {self.config.name!r} uses {modality} but no {names[modality]} input was passed; "
                    f"pass {names[modality]}= or build a config without it"
                )
            if not expected and value is not None:
                raise AvlabelError(
                    f"model {self.config.name!r} has no {modality} input (modalities: "
                    f"{', '.join(self.config.modalities)}); drop {names[modality]}= or add it to modalities"
                )
        if (inputs["audio"] is None) != (valid is None):
            raise AvlabelError("audio_tokens and audio_token_valid go together; pass both or neither")


def sample_negatives(similarity: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One hard negative per anchor, drawn from ``softmax(similarity)`` over its candidates (ALBEF).

    Args:
        similarity: ``(B, B)`` anchor x candidate scores (already divided by the temperature).
        candidates: ``(B, B)`` bool, the candidates each anchor may draw; the caller excludes the
            anchor's positive, so a positive is never drawn.

    Returns:
        ``(index, found)``: ``(B,)`` the drawn candidate of each anchor and ``(B,)`` bool, False
        for an anchor without any candidate (its index is then the anchor itself and must be
        given no weight).
    """
    found = candidates.any(dim=1)
    weights = torch.softmax(similarity.masked_fill(~candidates, float("-inf")), dim=1)
    rows = torch.arange(len(similarity), device=similarity.device)
    # An anchor without candidates draws itself with certainty (flagged by found = False).
    weights = torch.where(found[:, None], weights, F.one_hot(rows, len(similarity)).to(weights.dtype))
    return torch.multinomial(weights, 1).squeeze(1), found


def video_patch_targets(video: torch.Tensor, patch_size: int, normalise: bool) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B, T, N, P·P·C)`` patches in the patch embedding's order (float32).

    With ``normalise`` each patch is standardised over its pixels (MAE's per-patch normalised
    target, with MAE's 1e-6).
    """
    patches = rearrange(video.float(), "b c t (h p) (w q) -> b t (h w) (p q c)", p=patch_size, q=patch_size)
    if not normalise:
        return patches
    mean, var = patches.mean(dim=-1, keepdim=True), patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + 1e-6).sqrt()


def block_with_context(block: Block, x: torch.Tensor, context: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """A timm ``Block`` whose queries are ``x`` and whose keys and values are ``context``.

    Equal to running ``block`` on ``context`` (which contains ``x``) and keeping the rows of
    ``x``: attention rows and the MLP are per token, so only the queries of ``x`` are computed.

    Args:
        block: The stream's block (its LayerNorms, attention and MLP are used).
        x: ``(B, L, D)`` the stream's tokens.
        context: ``(B, L_all, D)`` every token the layer reads.
        keys: ``(B, 1, 1, L_all)`` bool, which context tokens may be read.
    """
    attn = block.attn
    q_weight, kv_weight = attn.qkv.weight.split([attn.attn_dim, 2 * attn.attn_dim])
    q_bias = kv_bias = None
    if attn.qkv.bias is not None:
        q_bias, kv_bias = attn.qkv.bias.split([attn.attn_dim, 2 * attn.attn_dim])
    q = rearrange(F.linear(block.norm1(x), q_weight, q_bias), "b l (h e) -> b h l e", h=attn.num_heads)
    kv = F.linear(block.norm1(context), kv_weight, kv_bias)
    k, v = rearrange(kv, "b l (two h e) -> two b h l e", two=2, h=attn.num_heads)
    q, k = attn.q_norm(q), attn.k_norm(k)
    dropout = attn.attn_drop.p if attn.training else 0.0
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys, dropout_p=dropout)  # (B, h, L, e)
    out = attn.proj_drop(attn.proj(attn.norm(rearrange(out, "b h l e -> b l (h e)"))))
    x = x + block.drop_path1(block.ls1(out))
    return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))
