"""The training objective of IMD (paper section 3.5).

Two targets are optimised together: the action class, by cross-entropy on the logits of the
classifier of Eq. 9, and the relevance network of Eq. 4, by binary cross-entropy between its
score and the relevance target (the normalised overlap between the clip's audio tags and the
SAVLD labels of its class, built by ``avlabel targets``). The relevance term is weighted by
lambda (``imd.relevance_weight``). A fusion head with an auxiliary loss of its own (the ``avc``
correspondence head) adds it as returned; it is already weighted by the model's config.

The relevance BCE is computed from ``rev_logit`` (the pre-sigmoid score) with
``binary_cross_entropy_with_logits``, which is numerically stable where ``rev`` saturates and is
safe under bf16 autocast; targets are soft values in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class LossTerms:
    """The total loss and the terms it is made of (each a scalar tensor)."""

    loss: torch.Tensor  # what backward runs on
    ce: torch.Tensor  # class cross-entropy (Eq. 9's softmax; AVT: the mean over streams)
    rel_bce: torch.Tensor | None  # relevance BCE; None when the model has no relevance network
    aux: torch.Tensor | None  # the fusion head's own auxiliary loss, if any
    # AVT's self-supervised losses by name (contrastive, matching, masked_video, masked_audio,
    # masked_segment), unweighted; those that are off are absent.
    pretext: dict[str, torch.Tensor] = field(default_factory=dict)


def imd_objective(
    output,
    labels: torch.Tensor,
    relevance_target: torch.Tensor | None,
    valid: torch.Tensor | None = None,
    *,
    relevance_weight: float = 1.0,
    label_smoothing: float = 0.0,
) -> LossTerms:
    """Loss = CE(logits, labels) + lambda * BCE(rev_logit, relevance_target) + aux_loss.

    Args:
        output: the model's ``FusionOutput`` (``logits``, ``rev_logit``, ``aux_loss``).
        labels: ``(B,)`` int64 class indices.
        relevance_target: ``(B,)`` float targets in [0, 1] (0 for clips without audio), or None
            when the batch carries no audio.
        valid: ``(B,)`` bool, False for placeholder items (unreadable clips), which get weight 0;
            None: all items count. CE and BCE are means over the valid items.
        relevance_weight: lambda.
        label_smoothing: passed to ``cross_entropy``.
    """
    weight = valid.float() if valid is not None else torch.ones_like(labels, dtype=torch.float32)
    count = weight.sum().clamp(min=1.0)
    # Losses in fp32: under bf16 autocast the logits arrive in bf16, whose 8-bit mantissa makes
    # a log-softmax over hundreds of classes visibly coarse.
    ce = F.cross_entropy(output.logits.float(), labels, reduction="none", label_smoothing=label_smoothing)
    ce = (ce * weight).sum() / count
    loss = ce
    rel_bce = None
    if output.rev_logit is not None and relevance_target is not None:
        bce = F.binary_cross_entropy_with_logits(output.rev_logit.float(), relevance_target.float(), reduction="none")
        rel_bce = (bce * weight).sum() / count
        loss = loss + relevance_weight * rel_bce
    aux = output.aux_loss
    if aux is not None:
        loss = loss + aux.float()
    return LossTerms(loss=loss, ce=ce, rel_bce=rel_bce, aux=aux)
