"""Audio time tokens: where each token of a window lies on the filterbank, which hold audio, and how loud they are.

AVT (issue 12) feeds its audio Transformer a sequence of time tokens per 10 s window instead of
one pooled embedding. Both audio embedders produce them on the same grid, AST's:

* AST-base cuts the ``(1024 frames, 128 mel bins)`` filterbank into 16 x 16 patches with stride
  10 along both axes: 12 frequency rows x 101 time columns, plus its two class tokens. Time
  column ``t`` covers frames ``[10 t, 10 t + 16)`` (160 ms, starting every 100 ms). The ``ast``
  embedder's token ``t`` is the mean over the 12 frequency rows of the last hidden state (after
  AST's final LayerNorm, class tokens removed): ``(101, 768)`` per window.
* The ``logmel`` embedder's token ``t`` is the mean over the same 16 frames of each of the 128
  normalised filterbank bins -- the spectrogram at AST's token rate, ``(101, 128)`` per window.
  The mean keeps the spectrum (what a masked token's reconstruction should recover) at 1/16 of
  the width of the flattened 16 x 128 patch; a 16-frame patch of a stationary sound varies little
  over its 160 ms.

`TokenGrid` holds the geometry (``patch`` frames per token, ``stride`` frames between tokens,
``max_length`` frames per window) and derives, from a window's filterbank and its number of
real frames (the rest is AST's zero padding):

* the **valid length** -- a token is valid when at least half of its frames hold audio:
  ``stride * t + patch // 2 <= num_frames``. A token that straddles the end of the audio counts
  when its first ``patch // 2`` frames (8 of 16) are real. A full 10 s window (998 frames) has
  100 valid tokens of 101; the last one lies wholly in the padding. Valid tokens are always a
  prefix of the window's tokens, so a length per window describes them.
* the **energy** -- how loud the token is: the log of its mean mel power over the mel bins and
  over its *real* frames, normalised as the filterbank is (``(log - mean) / (2 std)``, +0.25 per
  10 dB with the AudioSet statistics). The mean is taken over power, not over log values: most
  of the 128 bins of a narrow-band sound sit at the log floor, so a mean of logs ranks a 440 Hz
  tone at -20 dBFS RMS below white noise at -80 dBFS. Padding frames are excluded: AST pads the
  log-mel matrix with zeros, which normalise to +0.47, louder than most silence. A token
  without a real frame gets the energy of digital silence, ``FilterbankConfig.silence_energy``
  (-1.28 with the AudioSet statistics).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from avlabel.audio.features import FilterbankConfig


@dataclass(frozen=True)
class TokenGrid:
    """The time-token geometry of a window's filterbank (defaults: AST-base's, 101 tokens of 1024 frames)."""

    patch: int = 16  # frames under one token
    stride: int = 10  # frames between the first frames of consecutive tokens
    max_length: int = 1024  # frames of a window's filterbank, padding included

    @property
    def count(self) -> int:
        """Tokens per window (AST's time dimension: ``(max_length - patch) // stride + 1``)."""
        return (self.max_length - self.patch) // self.stride + 1

    def to_dict(self) -> dict:
        return {**asdict(self), "count": self.count}

    def valid_length(self, num_frames: torch.Tensor) -> torch.Tensor:
        """``(B,)`` int64: tokens with at least ``patch // 2`` real frames, for ``(B,)`` real frame counts."""
        import torch

        # Token t is valid iff stride * t + patch // 2 <= num_frames.
        length = torch.div(num_frames - self.patch // 2, self.stride, rounding_mode="floor") + 1
        return length.clamp(min=0, max=self.count)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, max_length, F)`` -> ``(B, count, F)``: the mean of each token's frames, padding included."""
        import torch.nn.functional as F

        return F.avg_pool1d(features.transpose(1, 2), self.patch, self.stride).transpose(1, 2)

    def energy(self, features: torch.Tensor, num_frames: torch.Tensor, config: FilterbankConfig) -> torch.Tensor:
        """``(B, count)`` float32 energy of each token: its mean mel power over its real frames, in the features' units.

        Args:
            features: ``(B, max_length, F)`` filterbanks, normalised as ``config`` says.
            num_frames: ``(B,)`` frames that hold audio.
            config: the filterbank's definition (its normalisation and silence floor).
        """
        import math

        import torch

        log_mel = config.log_mel(features.float())  # (B, T, F) natural-log mel power
        frame = torch.logsumexp(log_mel, dim=-1) - math.log(log_mel.shape[-1])  # (B, T) log of the mean over bins
        real = torch.arange(frame.shape[1], device=frame.device)[None, :] < num_frames[:, None]
        spans = frame.masked_fill(~real, -math.inf).unfold(1, self.patch, self.stride)  # (B, count, patch)
        count = real.unfold(1, self.patch, self.stride).sum(dim=-1)  # (B, count) real frames per token
        token = torch.logsumexp(spans, dim=-1) - count.clamp(min=1).log()  # log of the mean over the real frames
        return torch.where(count > 0, config.normalise(token), config.silence_energy)
