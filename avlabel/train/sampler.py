"""Samplers whose order is a pure function of (seed, epoch, rank), so training can resume mid-epoch.

`ResumableDistributedSampler` is PyTorch's ``DistributedSampler`` (the same shuffle, the
same shard of every rank) with two additions: it can start part-way through its shard (the
clips an interrupted run already trained on are skipped, not re-read), and it yields
``(epoch, index)`` pairs so that the dataset can derive each item's random augmentation from
``(seed, epoch, index)`` alone. That makes an item's content independent of which worker
process loads it and of where the epoch was resumed, which is what exact resume needs.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DistributedSampler


class ResumableDistributedSampler(DistributedSampler):
    """``DistributedSampler`` over ``range(size)`` that yields ``(epoch, index)`` from a start position.

    Args:
        size: number of items in the dataset.
        num_replicas: world size.
        rank: this process's rank.
        seed: shuffling seed (the order of epoch ``e`` is seeded by ``seed + e``).
        shuffle: shuffle each epoch (training) or keep the dataset order.
        drop_last: drop the tail that does not divide evenly across ranks instead of padding
            it with repeated items.
    """

    def __init__(
        self, size: int, num_replicas: int, rank: int, seed: int, shuffle: bool = True, drop_last: bool = True
    ):
        super().__init__(
            range(size), num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        """Make the next iteration yield epoch ``epoch``'s shard from its ``start``-th item on."""
        assert 0 <= start <= self.num_samples, (start, self.num_samples)
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())[self.start :]
        return iter([(self.epoch, index) for index in indices])

    def __len__(self) -> int:
        return self.num_samples - self.start


def shard_indices(size: int, num_replicas: int, rank: int) -> list[tuple[int, int]]:
    """This rank's strided share of ``range(size)`` as ``(0, index)`` pairs, without padding.

    Validation uses it: every item is evaluated exactly once over all ranks (a padded
    ``DistributedSampler`` would count repeated items twice in the accuracy).
    """
    return [(0, index) for index in range(rank, size, num_replicas)]
