"""The five stages of the SeeNet pipeline (kept for compatibility: see :mod:`seenet.pipeline`).

Example:
    >>> import seenet.stages as stages
    >>> sorted(stages.__all__)
    ['attention_maps', 'evaluate', 'proxy_gt', 'train_attention', 'train_seg']
"""

from __future__ import annotations

from .pipeline import attention_maps, evaluate, proxy_gt, train_attention, train_seg

__all__ = ["train_attention", "attention_maps", "proxy_gt", "train_seg", "evaluate"]
