"""Masks over audio time tokens for masked audio modelling: random tokens, and whole segments of audio activity.

AVT (issue 12) reconstructs masked audio tokens. Two kinds of mask are drawn here, as pure
functions of boolean/float tensors and a ``torch.Generator`` (so a seeded generator gives the same
mask on every run, and the caller decides where randomness comes from):

* `random_token_mask` -- the MAE/CAV-MAE masking of audio patches: ``round(ratio * n)`` of a
  clip's ``n`` valid tokens, uniformly at random. AST pads every clip to 1,024 frames, so a mask
  drawn over all 101 token positions would spend much of its budget on padding; drawing among
  the valid tokens only keeps the ratio a ratio of audio.
* `segment_mask` -- the selective masked audio *segment* objective of AVT. Its paper is not
  public; its abstract says the masking is selective and a secondary description says whole
  segments of audio activity are masked. We read that as: mask whole runs of ``segment``
  consecutive tokens, all of them *active* (valid and with energy above ``min_energy``), never
  padding or silence.

Both take ``valid`` ``(B, N)`` bool (``audio_token_valid`` of a batch, False for padding and for
clips without audio); `segment_mask` also takes ``energy`` ``(B, N)`` (``audio_token_energy``:
the log of each token's mean mel power, normalised as AST's input, see `avlabel.audio.tokens`).

How segments are placed. A maximal run of ``L`` active tokens holds at most ``floor(L / segment)``
whole segments. A clip wants ``k = round(ratio * active / segment)`` segments and gets ``min(k,
slots)``, where ``slots`` sums ``floor(L / segment)`` over its runs: ``k`` of those slots are
chosen uniformly at random, which says how many segments ``k_r`` each run gets, and then the
``k_r`` segments are placed in their run uniformly among all non-overlapping placements
(``k_r`` sorted picks among ``L - k_r (segment - 1)`` positions, the ``i``-th segment starting
``(i - 1)(segment - 1)`` after its pick). Exactly ``segment * min(k, slots)`` tokens are masked,
any start a segment fits at can be drawn, and a run shorter than ``segment`` is never masked (it
holds no whole segment). The draws are batched tensor operations with no loop over segments or
runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Default activity threshold of `segment_mask`, in the units of ``audio_token_energy`` (AST's
# normalised log-mel; +0.25 per 10 dB). Digital silence is -1.28; -0.5 is white noise at about
# -66 dBFS RMS or a 440 Hz tone at -46 dBFS RMS. Of the synthetic benchmark's sounds, 90% of the
# tokens lie above +0.24, and only drums' silent gaps between hits fall below (measured by
# benchmarks/bench_audio.py; docs/audio.md, "Audio tokens").
DEFAULT_MIN_ENERGY = -0.5


def random_token_mask(valid: torch.Tensor, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """Mask ``round(ratio * valid_count)`` of each clip's valid tokens, uniformly at random.

    Args:
        valid: ``(B, N)`` bool, the tokens that hold audio.
        ratio: fraction of the valid tokens to mask, in [0, 1] (CAV-MAE: 0.75). The count is
            rounded half to even, as ``torch.round`` (and Python's ``round``) does.
        generator: the source of randomness (its device is where the noise is drawn).

    Returns:
        ``(B, N)`` bool on ``valid``'s device; True marks a masked token, never an invalid one.
    """
    _check_ratio(ratio)
    count = torch.round(ratio * valid.sum(dim=1))  # (B,)
    return _first_by_random_order(valid, count, generator)


def segment_mask(
    valid: torch.Tensor,
    energy: torch.Tensor,
    ratio: float,
    segment: int,
    generator: torch.Generator,
    min_energy: float = DEFAULT_MIN_ENERGY,
) -> torch.Tensor:
    """Mask whole segments of ``segment`` consecutive active tokens (see the module docs for the placement).

    Args:
        valid: ``(B, N)`` bool, the tokens that hold audio.
        energy: ``(B, N)`` float, the energy of each token (``audio_token_energy``).
        ratio: fraction of each clip's active tokens to mask, in [0, 1], in whole segments:
            ``k = round(ratio * active / segment)`` segments are wanted.
        segment: tokens per segment (AST tokens are 10 frames = 100 ms apart).
        generator: the source of randomness.
        min_energy: tokens at or below this energy are silence and never masked.

    Returns:
        ``(B, N)`` bool on ``valid``'s device: ``segment * min(k, slots)`` True per clip, all on
        active tokens, in runs whose lengths are multiples of ``segment``; all False for a
        clip without active tokens.
    """
    _check_ratio(ratio)
    if segment < 1:
        raise ValueError(f"segment must be a positive number of tokens, got {segment}")
    if energy.shape != valid.shape:
        raise ValueError(f"energy {tuple(energy.shape)} and valid {tuple(valid.shape)} must have the same shape")
    active = valid & (energy > min_energy)  # (B, N)
    position = torch.arange(active.shape[1], device=active.device).expand_as(active)
    # The maximal runs of active tokens: for every token, its run's first position and length.
    first = active & ~F.pad(active[:, :-1], (1, 0), value=False)
    last = active & ~F.pad(active[:, 1:], (0, 1), value=False)
    run_start = torch.where(first, position, 0).cummax(dim=1).values
    run_end = torch.where(last, position, active.shape[1]).flip(1).cummin(dim=1).values.flip(1)
    length = run_end - run_start + 1
    offset = position - run_start  # position inside the run
    # 1. How many segments each run gets: k of the clip's floor(L / segment)-per-run slots, uniformly.
    slots = active & (offset < torch.div(length, segment, rounding_mode="floor"))
    wanted = torch.round(ratio * active.sum(dim=1) / segment)  # (B,)
    per_run = _count_per_run(_first_by_random_order(slots, wanted, generator), run_start, run_end)
    # 2. Where: k_r non-overlapping segments in a run of L tokens <-> k_r sorted picks p_1 < ... among
    # L - k_r (segment - 1) positions, segment i starting at p_i + (i - 1)(segment - 1); uniform picks
    # give every placement the same probability.
    picks = _first_by_random_order(active & (offset < length - per_run * (segment - 1)), per_run, generator, run_start)
    earlier = _count_per_run(picks, run_start, position) - 1  # picks before this one in its run
    starts = torch.zeros_like(position).scatter_add_(
        1, torch.where(picks, position + earlier * (segment - 1), 0), picks.long()
    )
    covered = starts.cumsum(dim=1)
    return (covered - F.pad(covered, (segment, 0))[:, : covered.shape[1]]) > 0  # a start within the last `segment`


def _first_by_random_order(
    candidates: torch.Tensor, count: torch.Tensor, generator: torch.Generator, group: torch.Tensor | None = None
) -> torch.Tensor:
    """``(B, N)`` bool: ``min(count, candidates)`` of each row's (or each group's) candidates, uniformly at random.

    ``count`` is ``(B,)`` per row, or ``(B, N)`` with ``group`` ``(B, N)`` naming each position's
    group by an index in ``[0, N)`` (the value of ``count`` is read per position).
    """
    # Candidates draw keys in [0, 1), the others 2 (+ N with groups): sorted, each row (or group)
    # starts with its candidates in random order, and its rank counts from its first candidate.
    keys = _uniform(candidates.shape, generator, candidates.device).double()
    if group is not None:
        keys = keys + group
    keys = keys.masked_fill(~candidates, 2.0 + candidates.shape[1])
    order = keys.argsort(dim=1)
    rank = torch.empty_like(order).scatter_(
        1, order, torch.arange(order.shape[1], device=order.device).expand_as(order)
    )
    if group is not None:  # rank within the group: minus the rank of the group's first candidate
        first_rank = torch.full_like(rank, order.shape[1]).scatter_reduce_(1, group, rank, "amin")
        rank = rank - first_rank.gather(1, group)
    count = count if count.dim() == 2 else count[:, None]
    return candidates & (rank < count)


def _count_per_run(flags: torch.Tensor, run_start: torch.Tensor, upto: torch.Tensor) -> torch.Tensor:
    """Per position: the True ``flags`` from its run's start through position ``upto`` (both ``(B, N)``)."""
    running = flags.long().cumsum(dim=1)
    return (
        running.gather(1, upto.clamp(max=flags.shape[1] - 1))
        - running.gather(1, run_start)
        + flags.gather(1, run_start).long()
    )


def _uniform(shape: torch.Size, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def _check_ratio(ratio: float) -> None:
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"the mask ratio must lie in [0, 1], got {ratio}")
