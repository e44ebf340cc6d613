"""A resumable, distributed sampler with per-sample augmentation seeds.

The training data is one endless stream: epoch ``e`` is a permutation of the data set drawn from
``(seed, e)``, and the stream is the epochs one after another. Iteration ``i`` consumes the global
batch at stream positions ``[i*B, (i+1)*B)``, split between processes and accumulation steps like
:class:`torch.utils.data.DistributedSampler` splits an epoch: micro-step ``a`` of rank ``r`` takes
positions ``(a*W + r)*m ... (a*W + r + 1)*m`` (``W`` processes, micro-batch ``m = B / (W*A)``).
Every position also gets its own augmentation seed. So the sequence of samples, and their crops and
flips, depends only on ``seed`` and the iteration: not on the number of workers, and not on whether
the run was interrupted and resumed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .seeding import sample_seed

__all__ = ["ResumableDistributedSampler"]


class ResumableDistributedSampler(torch.utils.data.Sampler):
    """Yields micro-batches of ``(index, sample_seed)`` keys for one process, forever.

    Args:
        num_samples: Size of the data set.
        batch_size: Global batch per optimisation step (all processes, all accumulation steps).
        seed: Seed of the order and of the augmentation.
        rank: This process's rank.
        world_size: Number of processes.
        accumulate: Gradient-accumulation steps per optimisation step.
        start_iteration: First iteration to produce (for resuming).

    Example:
        >>> ranks = [ResumableDistributedSampler(5, 4, world_size=2, rank=r) for r in (0, 1)]
        >>> first = [next(iter(s)) for s in ranks]  # one global batch: two micro-batches of 2
        >>> len({index for batch in first for index, _ in batch})
        4
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        accumulate: int = 1,
        start_iteration: int = 0,
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        if batch_size % (world_size * accumulate):
            raise ValueError(
                f"batch_size ({batch_size}) must be divisible by the number of processes "
                f"({world_size}) times the accumulation steps ({accumulate})"
            )
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank, self.world_size, self.accumulate = int(rank), int(world_size), int(accumulate)
        self.micro_batch = batch_size // (world_size * accumulate)
        self.start_iteration = int(start_iteration)
        self._epoch = -1
        self._perm = np.empty(0, dtype=np.int64)

    def _index(self, position: int) -> tuple[int, int]:
        epoch, offset = divmod(position, self.num_samples)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(sample_seed(self.seed, epoch, 2**40))
            self._perm = torch.randperm(self.num_samples, generator=gen).numpy()
            self._epoch = epoch
        return int(self._perm[offset]), sample_seed(self.seed, epoch, offset)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        iteration = self.start_iteration
        m, w = self.micro_batch, self.world_size
        while True:
            base = iteration * self.batch_size
            for a in range(self.accumulate):
                first = base + (a * w + self.rank) * m
                yield [self._index(p) for p in range(first, first + m)]
            iteration += 1

    def __len__(self) -> int:  # endless; DataLoader only needs it for its own bookkeeping
        return 2**62
