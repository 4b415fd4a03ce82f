"""What the fusion heads and the full models return.

Named tuples (not dataclasses) so ``torch.compile``, activation checkpointing and
``DistributedDataParallel`` see plain pytrees of tensors. Both model families return a
`FusionOutput`; the fields an IMD model has no use for are None in an AVT model's output and
the other way round, so training, evaluation and prediction read one type.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class FusedEmbedding(NamedTuple):
    """A fusion head's output: the fused embedding plus what the head wants to report.

    Attributes:
        z: ``(B, D)`` fused embedding, the input of the classifier (Eq. 9).
        rev: ``(B,)`` relevance score in [0, 1] (IMD's relevance network, Eq. 4), else None.
        rev_logit: ``(B,)`` the logit behind ``rev`` (for BCE-with-logits), else None.
        delta: ``(B,)`` the factor the audio embedding was multiplied by (Eq. 5), else None.
        keep: ``(B,)`` bool, True where audio entered the fusion; None without audio.
        aux_loss: scalar auxiliary loss a head adds in training mode (``avc``), else None.
    """

    z: torch.Tensor
    rev: torch.Tensor | None = None
    rev_logit: torch.Tensor | None = None
    delta: torch.Tensor | None = None
    keep: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None


class ContrastiveEmbeddings(NamedTuple):
    """The audio-video contrastive embeddings of a batch (AVT, avlabel.models.avt).

    Attributes:
        video: ``(B, E)`` L2-normalised embedding of the clip's video (its visual streams).
        audio: ``(B, E)`` L2-normalised embedding of the clip's audio.
        temperature: scalar, the learnable InfoNCE temperature (clamped to ALBEF's [0.001, 0.5]).
    """

    video: torch.Tensor
    audio: torch.Tensor
    temperature: torch.Tensor


class MatchingOutput(NamedTuple):
    """The audio-video matching head's logits over a set of (video, audio) pairs of the batch.

    In training the pairs are every clip with its own audio (the first B), each video with a
    hard-negative audio and each audio with a hard-negative video (ALBEF); in evaluation only
    the B positive pairs. A pair matches when ``video_index == audio_index``.

    Attributes:
        logits: ``(P, 2)`` logits of (mismatch, match).
        video_index: ``(P,)`` batch row whose video the pair holds.
        audio_index: ``(P,)`` batch row whose audio the pair holds.
        sampled: ``(P,)`` bool, False for a negative that could not be drawn (no other clip with
            audio in the batch); such pairs carry a positive's indices and must get weight 0.
    """

    logits: torch.Tensor
    video_index: torch.Tensor
    audio_index: torch.Tensor
    sampled: torch.Tensor


class Reconstruction(NamedTuple):
    """A masked-modelling head's prediction of every token's target, and the target.

    Attributes:
        prediction: ``(B, ..., P)`` predicted target of every token (masked or not).
        target: ``(B, ..., P)`` the target: per-patch normalised pixels (RGB), the flow values
            of the patch, or the per-token standardised cached audio token.
    """

    prediction: torch.Tensor
    target: torch.Tensor


class FusionOutput(NamedTuple):
    """The model's output (the contract training and evaluation rely on).

    Attributes:
        logits: ``(B, C)`` class logits (Eq. 9 before the softmax).
        rev: ``(B,)`` IMD relevance score, None for other heads and for models without audio.
        rev_logit: ``(B,)`` logit of ``rev``: train the relevance network with BCE-with-logits on it.
        delta: ``(B,)`` audio multiplier of Eq. 5 (0 where IMD dropped the audio), IMD only.
        keep: ``(B,)`` bool, True where audio took part in the fusion (False where IMD dropped it
            or the clip has no audio); None for models without audio or without vision.
        aux_loss: scalar auxiliary loss to add to the training loss as is (``avc`` head in
            training mode), else None.
        modality_logits: ``(B, M, C)`` logits of each stream's class embedding through the shared
            head (AVT, MBT's classifier); ``logits`` is their mean over the streams present.
        modality_mask: ``(B, M)`` bool, which of ``modality_logits`` count (the audio stream's
            not for clips without audio).
        embeddings: the contrastive embeddings (AVT with a contrastive head), else None.
        matching: the matching head's pair logits (AVT with a matching head), else None.
        reconstructions: stream name -> `Reconstruction` of the masked pass (AVT in training,
            when masks were given), else None.
    """

    logits: torch.Tensor
    rev: torch.Tensor | None = None
    rev_logit: torch.Tensor | None = None
    delta: torch.Tensor | None = None
    keep: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None
    modality_logits: torch.Tensor | None = None
    modality_mask: torch.Tensor | None = None
    embeddings: ContrastiveEmbeddings | None = None
    matching: MatchingOutput | None = None
    reconstructions: dict[str, Reconstruction] | None = None
