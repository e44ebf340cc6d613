"""Per-sample random seeds: augmentation that depends on the sample and the epoch only."""

from __future__ import annotations

import numpy as np

__all__ = ["sample_seed"]


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The per-sample augmentation seed used when a dataset is indexed without one.

    Example:
        >>> sample_seed(0, 0, 1) != sample_seed(0, 1, 1)
        True
    """
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index)])
    return int(ss.generate_state(1, dtype=np.uint32)[0])
