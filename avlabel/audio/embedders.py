"""Audio embedders: what turns a clip's filterbank into the vector the fusion model consumes.

Two backends, in a plain table (`EMBEDDERS`):

* ``ast`` -- the frozen AST (`AstTagger`), the paper's choice: a 768-d
  class-token embedding plus 527 AudioSet probabilities, from which relevance targets are built.
* ``logmel`` -- `LogMelEmbedder`, for users without AST weights and for CPU-only synthetic
  runs: the per-mel-bin mean and standard deviation over time of the normalised AST filterbank
  (256-d). It is a weak baseline -- a long-term average spectrum knows timbre and loudness, not
  events -- and it predicts no tags, so targets must then come from ``--tags``.

Every embedder exposes ``name``, ``dim``, ``labels`` (class names of its probabilities, or None),
``filterbank`` (an `AstFilterbank`), ``device``, ``identity`` (a
JSON-able dict the cache compares to refuse mixing embedders), ``token_grid`` (a
`TokenGrid`) and ``token_dim`` (the width of its time tokens, see
`avlabel.audio.tokens`), and ``embed(features, num_frames, tokens=False) -> AudioEmbedding``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

from avlabel.audio.features import AstFilterbank, FilterbankConfig
from avlabel.audio.tokens import TokenGrid
from avlabel.errors import AvlabelError

if TYPE_CHECKING:
    import torch


class AudioEmbedding(NamedTuple):
    """What an embedder returns for a batch of windows (float32, on the embedder's device)."""

    embedding: torch.Tensor  # (B, dim): the pooled clip embedding the IMD audio bottleneck reads
    probs: torch.Tensor | None  # (B, num_labels) sigmoid probabilities; None for an embedder without tags
    tokens: torch.Tensor | None  # (B, token_grid.count, token_dim) time tokens, when asked for


class LogMelEmbedder:
    """Time statistics of the normalised AST filterbank: ``[mean over frames, std over frames]``.

    Only frames holding audio count (AST's zero padding is excluded), so a 3 s clip and a 10 s
    clip of the same sound get similar vectors. Its time tokens are the filterbank averaged over
    AST's token spans (`TokenGrid.pool`): ``(101, 128)`` per 10 s window.

    Args:
        filterbank: the filterbank definition (default: AST's AudioSet recipe).
        device: torch device.
    """

    name = "logmel"
    labels = None

    def __init__(self, filterbank: AstFilterbank | None = None, device="cpu"):
        import torch

        self.filterbank = filterbank or AstFilterbank(FilterbankConfig())
        self.device = torch.device(device)
        self.dim = 2 * self.filterbank.config.num_mel_bins
        self.token_grid = TokenGrid(max_length=self.filterbank.config.max_length)  # AST-base's patch and stride
        self.token_dim = self.filterbank.config.num_mel_bins

    @property
    def identity(self) -> dict:
        return {"name": self.name, "dim": self.dim, "filterbank": self.filterbank.config.to_dict()}

    def embed(self, features, num_frames, tokens: bool = False) -> AudioEmbedding:
        """``(B, T, F)`` features and ``(B,)`` valid frame counts -> ``(B, 2F)`` embedding, no probabilities, tokens if asked."""
        import torch

        features = features.to(self.device, dtype=torch.float32)
        num_frames = num_frames.to(self.device)
        valid = (torch.arange(features.shape[1], device=self.device)[None, :] < num_frames[:, None]).unsqueeze(
            -1
        )  # (B, T, 1)
        count = valid.sum(dim=1).clamp(min=1)  # (B, 1)
        mean = (features * valid).sum(dim=1) / count  # (B, F)
        variance = (((features - mean[:, None]) * valid) ** 2).sum(dim=1) / count
        time_tokens = self.token_grid.pool(features) if tokens else None  # (B, count, F)
        return AudioEmbedding(torch.cat([mean, variance.sqrt()], dim=-1), None, time_tokens)


def _build_ast(ast: str | os.PathLike[str] | None, device):
    from avlabel.audio.ast import DEFAULT_AST, AstTagger

    return AstTagger.from_pretrained(ast or DEFAULT_AST, device=device)


def _build_logmel(ast: str | os.PathLike[str] | None, device):
    return LogMelEmbedder(device=device)


# name -> factory(ast checkpoint or None, device)
EMBEDDERS = {"ast": _build_ast, "logmel": _build_logmel}


def build_embedder(name: str, ast: str | os.PathLike[str] | None = None, device="cpu"):
    """Build the embedder called ``name`` (``ast`` loads ``ast``, a hub id or directory)."""
    if name not in EMBEDDERS:
        raise AvlabelError(f"unknown audio embedder {name!r}; choose one of {', '.join(sorted(EMBEDDERS))}")
    if name != "ast" and ast is not None:
        raise AvlabelError(
            f"--ast applies to the 'ast' embedder only; drop it or use --embedder ast (got --embedder {name})"
        )
    return EMBEDDERS[name](ast, device)
