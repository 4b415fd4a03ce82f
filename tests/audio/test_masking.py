"""Audio token masks: valid lengths respected, never padding or silence, exact counts, seeded determinism."""

from __future__ import annotations

import pytest
import torch

from avlabel.audio.masking import DEFAULT_MIN_ENERGY, random_token_mask, segment_mask

LOUD, QUIET = 1.0, -1.2  # energies above and below the default threshold


def _valid(lengths, count: int = 101) -> torch.Tensor:
    return torch.arange(count)[None, :] < torch.tensor(lengths)[:, None]


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _runs(row: torch.Tensor) -> list[tuple[int, int]]:
    """(start, length) of the runs of True in a 1-D bool tensor."""
    runs, start = [], None
    for index, value in enumerate([*row.tolist(), False]):
        if value and start is None:
            start = index
        elif not value and start is not None:
            runs.append((start, index - start))
            start = None
    return runs


def test_random_mask_picks_exactly_round_ratio_of_the_valid_tokens():
    valid = _valid([100, 37, 1, 0, 101])
    mask = random_token_mask(valid, 0.75, _generator())
    assert mask.dtype == torch.bool and mask.shape == valid.shape
    assert mask.sum(dim=1).tolist() == [75, 28, 1, 0, 76]  # round(27.75) = 28, round(0.75) = 1, round(75.75) = 76
    assert not (mask & ~valid).any()  # never padding, never a clip without audio


def test_random_mask_never_picks_invalid_tokens_even_when_they_are_scattered():
    generator = _generator(1)
    valid = torch.rand(64, 101, generator=generator) < 0.3
    for ratio in (0.0, 0.5, 1.0):
        mask = random_token_mask(valid, ratio, generator)
        assert not (mask & ~valid).any()
        assert torch.equal(mask.sum(dim=1), torch.round(ratio * valid.sum(dim=1)).long())
    assert torch.equal(random_token_mask(valid, 1.0, generator), valid)


def test_random_mask_is_uniform_over_the_valid_tokens():
    valid = _valid([40] * 4000)
    frequency = random_token_mask(valid, 0.25, _generator(2)).float().mean(dim=0)[:40]
    assert (frequency - 0.25).abs().max() < 0.04  # every valid position is masked about a quarter of the time


def test_masks_are_a_function_of_the_generator_state():
    valid = _valid([90, 50, 101])
    energy = torch.full(valid.shape, LOUD)
    assert torch.equal(random_token_mask(valid, 0.5, _generator(7)), random_token_mask(valid, 0.5, _generator(7)))
    assert not torch.equal(random_token_mask(valid, 0.5, _generator(7)), random_token_mask(valid, 0.5, _generator(8)))
    first = segment_mask(valid, energy, 0.4, 5, _generator(7))
    assert torch.equal(first, segment_mask(valid, energy, 0.4, 5, _generator(7)))
    assert not torch.equal(first, segment_mask(valid, energy, 0.4, 5, _generator(8)))


def test_segments_lie_on_active_tokens_only():
    # Clip 0: loud 0-29, silence 30-49, loud 50-89, padding from 90. Clip 1: silence throughout.
    valid = _valid([90, 101])
    energy = torch.full(valid.shape, QUIET)
    energy[0, :30] = LOUD
    energy[0, 50:] = LOUD  # loud "padding" (AST pads with zeros, which normalise above silence)
    active = valid & (energy > DEFAULT_MIN_ENERGY)
    for seed in range(50):
        mask = segment_mask(valid, energy, 0.5, 10, _generator(seed))
        assert not (mask & ~active).any()  # never padding, never silence
        assert mask[0].sum() == 40 and not mask[1].any()  # round(0.5 * 70 / 10) = 4 segments; no active token
        assert all(length % 10 == 0 for _, length in _runs(mask[0]))  # whole segments


def test_segment_count_is_limited_by_the_blocks_the_runs_hold():
    valid = _valid([101, 101])
    energy = torch.full(valid.shape, QUIET)
    for start in range(0, 96, 12):  # clip 0: eight active runs of 7 tokens, each holding one segment of 5
        energy[0, start : start + 7] = LOUD
    energy[1, 10:14] = LOUD  # clip 1: one run of 4 tokens, shorter than a segment
    mask = segment_mask(valid, energy, 1.0, 5, _generator(3))
    # Clip 0 wants round(56 / 5) = 11 segments, but its runs hold 8; clip 1 wants 1 and holds none.
    assert mask.sum(dim=1).tolist() == [40, 0]
    assert [length for _, length in _runs(mask[0])] == [5] * 8


def test_segments_are_placed_uniformly_within_a_run():
    valid = _valid([20] * 6000)
    energy = torch.full(valid.shape, LOUD)  # one run of 20 active tokens: room for 4 segments of 5
    mask = segment_mask(valid, energy, 0.5, 5, _generator(4))  # round(0.5 * 20 / 5) = 2 segments
    assert (mask.sum(dim=1) == 10).all()
    # Two non-overlapping segments of 5 in 20 tokens: C(20 - 2 * 4, 2) = 66 placements, all equally likely.
    placements = {}
    for row in mask[:, :20].tolist():
        placements[tuple(row)] = placements.get(tuple(row), 0) + 1
    assert len(placements) == 66
    assert min(placements.values()) > 0.5 * 6000 / 66 and max(placements.values()) < 1.5 * 6000 / 66
    # A run whose length is a multiple of the segment is not cut at fixed places: starts vary.
    starts = {_runs(torch.tensor(row))[0][0] for row in list(placements)}
    assert starts == set(range(11))  # the first segment starts anywhere from 0 to 20 - 2 * 5


def test_energy_threshold_and_ratio_zero():
    valid = _valid([50])
    energy = torch.linspace(-1.0, 1.0, 101)[None, :]
    mask = segment_mask(valid, energy, 1.0, 1, _generator(), min_energy=0.0)
    assert torch.equal(mask, valid & (energy > 0.0))  # segment 1, ratio 1: exactly the active tokens
    assert not segment_mask(valid, energy, 0.0, 4, _generator()).any()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda v, e, g: random_token_mask(v, 1.5, g), r"mask ratio must lie in \[0, 1\]"),
        (lambda v, e, g: segment_mask(v, e, -0.1, 5, g), r"mask ratio must lie in \[0, 1\]"),
        (lambda v, e, g: segment_mask(v, e, 0.5, 0, g), "segment must be a positive number"),
        (lambda v, e, g: segment_mask(v, e[:, :10], 0.5, 5, g), "must have the same shape"),
    ],
)
def test_bad_arguments(call, message):
    valid = _valid([50])
    with pytest.raises(ValueError, match=message):
        call(valid, torch.zeros(valid.shape), _generator())
