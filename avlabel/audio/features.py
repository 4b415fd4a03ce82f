"""AST's input features: Kaldi-style log-mel filterbanks, normalised with AudioSet statistics.

AST (paper section 3.3, following its authors' recipe) sees a ``(1024, 128)`` matrix per clip:
128 log-mel energies every 10 ms (25 ms Hann frames, pre-emphasis 0.97, DC removal, power
spectrum of a 512-point FFT, Kaldi's mel scale from 20 Hz to Nyquist, log with a float32-epsilon
floor), truncated or zero-padded to 1024 frames, then mapped by ``(x - mean) / (2 * std)`` with the
AudioSet mean -4.2677393 and std 4.5689974.

transformers' `ASTFeatureExtractor` defines these numbers (and reads them
from a checkpoint's ``preprocessor_config.json``). It processes one waveform at a time, through
``torchaudio.compliance.kaldi.fbank`` when torchaudio is installed, else through a NumPy
frame loop. `AstFilterbank` computes the same features for a whole batch with a handful of
tensor operations on any device -- several times cheaper on one CPU core (see
``benchmarks/bench_audio.py``), and negligible next to the model on a GPU -- and its
``backend="transformers"`` calls the extractor itself. The tests hold the two to 1e-3 and pin
both against a recorded slice, so a library upgrade that changes AST's input is caught.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from avlabel.errors import AvlabelError

_BACKENDS = ("torch", "transformers")


@dataclass(frozen=True)
class FilterbankConfig:
    """The numbers that define AST's input (defaults: the AudioSet checkpoints')."""

    sample_rate: int = 16_000
    num_mel_bins: int = 128
    max_length: int = 1024  # frames (10 ms each) after padding/truncation
    mean: float = -4.2677393  # AudioSet log-mel mean
    std: float = 4.5689974  # AudioSet log-mel standard deviation
    do_normalize: bool = True

    @classmethod
    def from_extractor(cls, extractor) -> FilterbankConfig:
        """The configuration of a transformers ``ASTFeatureExtractor``."""
        return cls(
            sample_rate=int(extractor.sampling_rate),
            num_mel_bins=int(extractor.num_mel_bins),
            max_length=int(extractor.max_length),
            mean=float(extractor.mean),
            std=float(extractor.std),
            do_normalize=bool(extractor.do_normalize),
        )

    def to_extractor(self):
        """The equivalent transformers ``ASTFeatureExtractor``."""
        from transformers import ASTFeatureExtractor

        with warnings.catch_warnings():  # the empty-mel-filter warning, see AstFilterbank._tables
            warnings.simplefilter("ignore", UserWarning)
            return ASTFeatureExtractor(
                sampling_rate=self.sample_rate,
                num_mel_bins=self.num_mel_bins,
                max_length=self.max_length,
                mean=self.mean,
                std=self.std,
                do_normalize=self.do_normalize,
            )

    def to_dict(self) -> dict:
        return asdict(self)

    def normalise(self, log_mel):
        """AST's normalisation ``(x - mean) / (2 std)`` of log-mel values (none when ``do_normalize`` is off)."""
        return (log_mel - self.mean) / (2 * self.std) if self.do_normalize else log_mel

    def log_mel(self, features):
        """The natural-log mel energies of normalised ``features`` (the inverse of `normalise`)."""
        return features * (2 * self.std) + self.mean if self.do_normalize else features

    @property
    def silence_energy(self) -> float:
        """A frame of digital silence, normalised: every bin at the log-mel floor (float32's epsilon)."""
        return self.normalise(math.log(np.finfo(np.float32).eps))


class AstFilterbank:
    """Batched AST filterbank features.

    Args:
        config: the feature definition (use `FilterbankConfig.from_extractor` for a
            checkpoint's own).
        backend: ``"torch"`` (batched tensor code, runs on the waveforms' device) or
            ``"transformers"`` (the reference ``ASTFeatureExtractor``, one waveform at a time, CPU).

    Call with ``waveforms`` ``(B, N)`` float (mono, ``config.sample_rate``, values in [-1, 1]) and
    ``lengths`` ``(B,)`` valid samples per row; returns ``(features, num_frames)``: ``(B,
    max_length, num_mel_bins)`` float32 on the waveforms' device and ``(B,)`` int64 frames that
    hold audio (the rest is AST's zero padding).
    """

    def __init__(self, config: FilterbankConfig | None = None, backend: str = "torch"):
        if backend not in _BACKENDS:
            raise AvlabelError(f"unknown filterbank backend {backend!r}; choose one of {', '.join(_BACKENDS)}")
        self.config = config or FilterbankConfig()
        self.backend = backend
        # Kaldi frames: 25 ms windows every 10 ms, FFT padded to the next power of two.
        self.frame_length = round(0.025 * self.config.sample_rate)
        self.hop_length = round(0.010 * self.config.sample_rate)
        self.fft_length = 2 ** math.ceil(math.log2(self.frame_length))
        self._mel = None  # (fft_length // 2 + 1, num_mel_bins), built on first use
        self._window = None
        self._extractor = None

    def __call__(self, waveforms, lengths):
        import torch

        waveforms = torch.as_tensor(waveforms, dtype=torch.float32)
        lengths = torch.as_tensor(lengths, dtype=torch.int64, device=waveforms.device)
        features = self._reference(waveforms, lengths) if self.backend == "transformers" else self._log_mel(waveforms)
        num_frames = self.num_frames(lengths)
        # Frames past a row's valid samples become AST's zero padding (ASTFeatureExtractor pads
        # the *log-mel matrix* with zeros before normalising, as AST's training did).
        frame = torch.arange(self.config.max_length, device=waveforms.device)
        features = features * (frame[None, :, None] < num_frames[:, None, None])
        return self.config.normalise(features), num_frames

    def num_frames(self, lengths):
        """Frames holding audio for ``lengths`` valid samples (Kaldi's snip_edges), capped at max_length."""
        import torch

        frames = torch.div(lengths - self.frame_length, self.hop_length, rounding_mode="floor") + 1
        return frames.clamp(min=0, max=self.config.max_length)

    def _log_mel(self, waveforms):
        """Un-normalised log-mel energies ``(B, max_length, num_mel_bins)``, frames cut or zero-padded."""
        import torch
        import torch.nn.functional as F

        mel, window = self._tables(waveforms.device)
        if waveforms.shape[1] < self.frame_length:
            waveforms = F.pad(waveforms, (0, self.frame_length - waveforms.shape[1]))
        # Only the frames AST keeps are computed.
        usable = (self.config.max_length - 1) * self.hop_length + self.frame_length
        frames = waveforms[:, :usable].unfold(-1, self.frame_length, self.hop_length)  # (B, T, L)
        frames = frames - frames.mean(dim=-1, keepdim=True)  # remove DC offset
        # Pre-emphasis inside each frame; Kaldi treats the sample before the first as the first.
        frames = torch.cat([frames[..., :1] * (1 - 0.97), frames[..., 1:] - 0.97 * frames[..., :-1]], dim=-1)
        power = torch.fft.rfft(frames * window, n=self.fft_length).abs().square()  # (B, T, fft/2+1)
        log_mel = torch.log(torch.clamp(power @ mel, min=torch.finfo(torch.float32).eps))  # (B, T, F)
        return F.pad(log_mel, (0, 0, 0, self.config.max_length - log_mel.shape[1]))

    def _tables(self, device):
        import torch

        if self._mel is None:
            from transformers.audio_utils import mel_filter_bank

            # The exact triangular Kaldi mel filters ASTFeatureExtractor's NumPy path uses. With
            # 128 bins over 257 FFT bins the lowest filters are empty (as in Kaldi); transformers
            # warns about it, which tells a user nothing actionable.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                filters = mel_filter_bank(
                    num_frequency_bins=self.fft_length // 2 + 1,
                    num_mel_filters=self.config.num_mel_bins,
                    min_frequency=20,
                    max_frequency=self.config.sample_rate // 2,
                    sampling_rate=self.config.sample_rate,
                    norm=None,
                    mel_scale="kaldi",
                    triangularize_in_mel_space=True,
                )
            self._mel = torch.from_numpy(filters).float()
            # Kaldi's "hanning" window is the symmetric Hann window.
            self._window = torch.hann_window(self.frame_length, periodic=False, dtype=torch.float64).float()
        if self._mel.device != device:
            self._mel, self._window = self._mel.to(device), self._window.to(device)
        return self._mel, self._window

    def _reference(self, waveforms, lengths):
        """Un-normalised features from transformers' ASTFeatureExtractor (CPU, one row at a time)."""
        import torch

        if self._extractor is None:
            self._extractor = self.config.to_extractor()
            self._extractor.do_normalize = False  # normalised once, after the padding mask
        rows = []
        for waveform, length in zip(waveforms.cpu().numpy(), lengths.tolist()):
            if length < self.frame_length:  # the extractor cannot frame fewer samples than one window
                rows.append(np.zeros((self.config.max_length, self.config.num_mel_bins), np.float32))
                continue
            rows.append(
                self._extractor(waveform[:length], sampling_rate=self.config.sample_rate, return_tensors="np")[
                    "input_values"
                ][0]
            )
        return torch.from_numpy(np.stack(rows)).to(waveforms.device)
