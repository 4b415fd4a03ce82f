"""The training objective of AVT: MBT's classification loss plus the self-supervised losses.

``loss = w_cls * CE + w_c * L_contrastive + w_m * L_matching + w_v * L_video + w_a * L_audio + w_s * L_segment``
with the weights of the ``avt`` config section (`avlabel.train.config.AvtConfig`). AVT's
abstract names the objectives; their forms follow the nearest published ones:

* CE (MBT): the cross-entropy of each stream's logits (the shared head on its class
  embedding), averaged over the streams present in a clip (the audio stream's only where the
  clip has audio), then over the batch. With ``classification_weight`` 0 (the self-supervised
  stage) the model classifies from detached class embeddings and the CE trains the head alone,
  as an online linear probe.
* Contrastive (CAV-MAE / ALBEF): symmetric InfoNCE between the L2-normalised video and audio
  embeddings with the model's learnable temperature,
  ``L = (CE(V A^T / tau, I) + CE(A V^T / tau, I)) / 2``, over the clips that have audio; the
  negatives are every other such clip of the *global* batch, gathered across DDP ranks
  (`avlabel.train.distributed.gather_for_global_loss`, which makes the gradient exact).
* Matching (ALBEF's ITM): two-way cross-entropy of the matching head over the model's pairs
  (each clip's own pair, and one hard negative for each video and each audio); pairs whose
  audio is absent, that hold a placeholder clip or whose negative could not be drawn get weight 0.
* Masked video (VideoMAE tubes): mean squared error over the masked tubes of each visual
  stream (every frame of a masked patch position), averaged over streams.
* Masked audio (CAV-MAE): mean squared error over the masked audio tokens, chosen at random
  among the valid tokens (`avlabel.audio.masking.random_token_mask`).
* Masked audio segments (AVT's selective masking, as avlabel reads it): the same error over
  whole contiguous segments of active audio (`avlabel.audio.masking.segment_mask`: never
  padding, never silence). When both audio losses are on, one masked pass carries both masks:
  the segments first, then the random tokens among the valid tokens outside them, so the two
  losses read disjoint tokens.

Contrastive and matching read the clean pass, the reconstructions a second, masked pass of
the same forward call (`avlabel.models.avt.AudioVideoTransformer`). Every loss is computed in
float32. Masks are drawn from torch's global CPU generator, which training seeds per rank and
saves in checkpoints, so a resumed run draws the same masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from avlabel.models.config import ModelConfig
from avlabel.models.outputs import ContrastiveEmbeddings, FusionOutput, MatchingOutput, Reconstruction
from avlabel.train.config import AvtConfig
from avlabel.train.distributed import DistContext, gather_for_global_loss
from avlabel.train.objective import LossTerms


@dataclass
class PretextMasks:
    """The masks of one batch's masked pass (CPU tensors; True = masked).

    Attributes:
        tubes: visual stream -> ``(B, N)`` patch positions masked in every frame.
        audio_random: ``(B, N_a)`` audio tokens masked at random, or None.
        audio_segment: ``(B, N_a)`` audio tokens masked as whole active segments, or None.
    """

    tubes: dict[str, torch.Tensor]
    audio_random: torch.Tensor | None = None
    audio_segment: torch.Tensor | None = None

    def model_kwargs(self, device: torch.device) -> dict[str, torch.Tensor]:
        """The model's mask arguments: one tube mask per visual stream, the union of the audio masks."""
        kwargs = {f"{modality}_mask": mask.to(device, non_blocking=True) for modality, mask in self.tubes.items()}
        audio = [mask for mask in (self.audio_random, self.audio_segment) if mask is not None]
        if audio:
            kwargs["audio_mask"] = torch.stack(audio).any(dim=0).to(device, non_blocking=True)
        return kwargs


def draw_masks(
    batch: dict, model_config: ModelConfig, avt: AvtConfig, generator: torch.Generator | None = None
) -> PretextMasks:
    """Draw the masks of the masked losses that are on (tubes, random tokens, active segments).

    Args:
        batch: the collated batch (``audio_token_valid`` and ``audio_token_energy`` for audio).
        model_config: the model (its visual streams and patch grid).
        avt: the weights and ratios.
        generator: a CPU generator; None: torch's global one (saved in checkpoints).
    """
    from avlabel.audio.masking import random_token_mask, segment_mask

    generator = generator if generator is not None else torch.default_generator
    size = len(batch["label"])
    tubes = {}
    if avt.masked_video_weight > 0:
        positions = torch.ones(size, (model_config.img_size // model_config.patch_size) ** 2, dtype=torch.bool)
        tubes = {
            m: random_token_mask(positions, avt.video_mask_ratio, generator) for m in model_config.visual_modalities
        }
    valid = batch.get("audio_token_valid")
    segment = random = None
    if avt.masked_segment_weight > 0:
        energy = batch["audio_token_energy"]
        segment = segment_mask(valid, energy, avt.segment_mask_ratio, avt.segment_length, generator)
    if avt.masked_audio_weight > 0:
        random = random_token_mask(valid if segment is None else valid & ~segment, avt.audio_mask_ratio, generator)
    return PretextMasks(tubes, random, segment)


def avt_objective(
    output: FusionOutput,
    labels: torch.Tensor,
    valid: torch.Tensor,
    avt: AvtConfig | None,
    *,
    masks: PretextMasks | None = None,
    ctx: DistContext | None = None,
    label_smoothing: float = 0.0,
) -> LossTerms:
    """The weighted sum of the classification and self-supervised losses that are on.

    Args:
        output: the model's output (``modality_logits``, ``embeddings``, ``matching``,
            ``reconstructions``).
        labels: ``(B,)`` class indices.
        valid: ``(B,)`` bool, False for placeholder items (unreadable clips): weight 0 everywhere.
        avt: the weights; None computes the classification loss alone (validation, where the
            ranks' shards differ in size and nothing may be gathered).
        masks: the masks the masked pass used (`draw_masks`), when a masked loss is on.
        ctx: the distributed context, for the contrastive loss's negatives.
        label_smoothing: passed to ``cross_entropy``.
    """
    ce = classification_loss(output, labels, valid, label_smoothing)
    if avt is None:
        return LossTerms(loss=ce, ce=ce, rel_bce=None, aux=None)
    present = output.keep & valid if output.keep is not None else valid
    pretext: dict[str, torch.Tensor] = {}
    if avt.contrastive_weight > 0:
        pretext["contrastive"] = contrastive_loss(output.embeddings, present, ctx)
    if avt.matching_weight > 0:
        pretext["matching"] = matching_loss(output.matching, valid, output.keep)
    reconstructions = output.reconstructions or {}
    if avt.masked_video_weight > 0:
        streams = list(masks.tubes)
        errors = [reconstruction_loss(reconstructions[m], masks.tubes[m], valid) for m in streams]
        pretext["masked_video"] = torch.stack(errors).mean()
    if avt.masked_audio_weight > 0:
        pretext["masked_audio"] = reconstruction_loss(reconstructions["audio"], masks.audio_random, valid)
    if avt.masked_segment_weight > 0:
        pretext["masked_segment"] = reconstruction_loss(reconstructions["audio"], masks.audio_segment, valid)
    weights = {name: getattr(avt, f"{name}_weight") for name in pretext}
    # The self-supervised stage trains the head as a probe: its CE reaches the head alone, at weight 1.
    loss = ce * (avt.classification_weight if avt.classification_weight > 0 else 1.0)
    for name, term in pretext.items():
        loss = loss + weights[name] * term
    return LossTerms(loss=loss, ce=ce, rel_bce=None, aux=None, pretext=pretext)


def classification_loss(
    output: FusionOutput, labels: torch.Tensor, valid: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """MBT's loss: per clip the mean CE of its present streams, then the mean over valid clips."""
    logits = output.modality_logits.float()  # (B, M, C)
    batch, streams = logits.shape[:2]
    per_stream = F.cross_entropy(
        logits.flatten(0, 1), labels.repeat_interleave(streams), reduction="none", label_smoothing=label_smoothing
    ).view(batch, streams)
    counted = (output.modality_mask & valid[:, None]).float()
    per_clip = (per_stream * counted).sum(dim=1) / counted.sum(dim=1).clamp(min=1.0)
    clips = (counted.sum(dim=1) > 0).float()
    return (per_clip * clips).sum() / clips.sum().clamp(min=1.0)


def contrastive_loss(embeddings: ContrastiveEmbeddings, include: torch.Tensor, ctx: DistContext | None) -> torch.Tensor:
    """Symmetric InfoNCE over the global batch's clips with ``include`` True (audio present, readable).

    Every rank computes the same loss from the gathered embeddings. With fewer than two such
    clips there is no negative and the loss is 0 (still connected to the graph, so every
    parameter receives a gradient, as DDP requires).
    """
    video, audio = embeddings.video.float(), embeddings.audio.float()
    if ctx is not None:
        video, audio = gather_for_global_loss(video, ctx), gather_for_global_loss(audio, ctx)
        include = gather_for_global_loss(include.to(torch.uint8), ctx).to(torch.bool)
    rows = include.nonzero().squeeze(1)
    logits = video[rows] @ audio[rows].T / embeddings.temperature.float()  # (n, n): video i vs audio j
    targets = torch.arange(len(rows), device=logits.device)
    loss = F.cross_entropy(logits, targets, reduction="sum") + F.cross_entropy(logits.T, targets, reduction="sum")
    return loss / (2 * len(rows)) if len(rows) > 1 else 0.0 * loss


def matching_loss(matching: MatchingOutput, valid: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Two-way CE of the matching head over its pairs; a pair matches when it holds one clip's video and audio."""
    targets = (matching.video_index == matching.audio_index).long()
    weight = (
        matching.sampled & valid[matching.video_index] & valid[matching.audio_index] & present[matching.audio_index]
    ).float()
    loss = F.cross_entropy(matching.logits.float(), targets, reduction="none")
    return (loss * weight).sum() / weight.sum().clamp(min=1.0)


def reconstruction_loss(reconstruction: Reconstruction, mask: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean squared error per token over the masked tokens of the valid clips.

    Args:
        reconstruction: the model's ``Reconstruction`` (prediction and target ``(B, ..., P)``).
        mask: ``(B, N)`` bool over tokens (video: patch positions, shared by the ``T`` frames of a tube).
        valid: ``(B,)`` bool.
    """
    error = (reconstruction.prediction.float() - reconstruction.target.float()).pow(2).mean(dim=-1)  # (B, [T,] N)
    weight = (mask.to(error.device) & valid[:, None]).float()
    if error.ndim == 3:  # video: every frame of a masked tube
        weight = weight[:, None, :].expand_as(error)
    return (error * weight).sum() / weight.sum().clamp(min=1.0)
