"""What the fusion heads and the full model return.

Named tuples (not dataclasses) so ``torch.compile``, activation checkpointing and
``DistributedDataParallel`` see plain pytrees of tensors.
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
    """

    logits: torch.Tensor
    rev: torch.Tensor | None = None
    rev_logit: torch.Tensor | None = None
    delta: torch.Tensor | None = None
    keep: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None
